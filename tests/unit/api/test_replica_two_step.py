"""A lookup of many files asks Rucio first without schemes (one PFN per storage) and asks again, with the
tool's schemes, only for the files whose answer lacks the scheme the pilot would choose."""

from pilot.api import replicas
from pilot.info import FileSpec

ALLOWED = ["root", "davs", "https", "file", "srm", "gsiftp", "storm"]


class SchemeRucio:
    """Rucio as it answers: every read protocol of the asked schemes, or the first one without schemes."""

    def __init__(self, protocols, holdings, with_protocols=True):
        self.protocols = protocols  # rse -> [scheme, ...] in Rucio's priority order
        self.holdings = holdings  # name -> [rse, ...]
        self.asked = []
        if not with_protocols:
            self.get_protocols = None

    def get_protocols(self, rse):
        return [{"scheme": s, "domains": {"lan": {"read": i + 1}, "wan": {"read": i + 1}}}
                for i, s in enumerate(self.protocols[rse])] + [{"scheme": "gsiftp", "domains": {"wan": {"read": 0}}}]

    def list_replicas(self, dids, schemes=None, **kw):
        self.asked.append((len(dids), schemes))
        for did in dids:
            rses = {}
            for rse in self.holdings.get(did["name"], []):
                usable = [s for s in self.protocols[rse] if schemes is None or s in schemes]
                rses[rse] = [f"{s}://{rse.lower()}/{did['name']}" for s in (usable if schemes else usable[:1])]
            yield {"scope": did["scope"], "name": did["name"], "rses": rses,
                   "pfns": {p: {"type": "DISK"} for pfns in rses.values() for p in pfns}, "adler32": "0000002a"}


def files(count):
    return [FileSpec(type="input", scope="tests", lfn=f"f{n}.dat") for n in range(count)]


def chosen(answers, fspecs):
    return [[r["pfn"] for r in replicas.order_replicas(answers[(f.scope, f.lfn)], f, None, ALLOWED, [])]
            for f in fspecs]


def test_one_lookup_without_schemes_when_the_first_protocol_is_the_choice():
    fspecs = files(12)
    rucio = SchemeRucio({"XRD": ["root", "davs", "https"]}, {f.lfn: ["XRD"] for f in fspecs})
    answers = replicas.lookup(rucio, fspecs, False, ALLOWED, None, [])
    assert rucio.asked == [(12, None)]
    assert chosen(answers, fspecs) == [[f"root://xrd/{f.lfn}"] for f in fspecs]


def test_files_on_a_storage_whose_first_protocol_is_not_the_choice_are_asked_again():
    fspecs = files(12)
    holdings = {f.lfn: ["XRD"] for f in fspecs}
    holdings.update({f.lfn: ["XRD", "WEB"] for f in fspecs[:3]})
    rucio = SchemeRucio({"XRD": ["root", "davs"], "WEB": ["https", "root"]}, holdings)
    reference = SchemeRucio(rucio.protocols, holdings)
    answers = replicas.lookup(rucio, fspecs, False, ALLOWED, None, [])
    assert rucio.asked == [(12, None), (3, replicas.query_schemes(ALLOWED))]
    expected = replicas._by_did(reference.list_replicas([{"scope": "tests", "name": f.lfn} for f in fspecs],
                                                        schemes=replicas.query_schemes(ALLOWED)))
    assert chosen(answers, fspecs) == chosen(expected, fspecs)
    assert chosen(answers, fspecs[:1]) == [["root://xrd/f0.dat", "root://web/f0.dat"]]


def test_unknown_protocols_few_files_or_a_virtual_placement_ask_with_schemes():
    many = files(12)
    blind = SchemeRucio({"XRD": ["root"]}, {f.lfn: ["XRD"] for f in many}, with_protocols=False)
    replicas.lookup(blind, many, False, ALLOWED, None, [])
    assert blind.asked == [(12, None), (12, replicas.query_schemes(ALLOWED))]
    for fspecs, use_vp, schemes in ((files(replicas.TWO_STEP_MIN_FILES - 1), False, replicas.query_schemes(ALLOWED)),
                                    (many, True, ["root"])):
        rucio = SchemeRucio({"XRD": ["root"]}, {f.lfn: ["XRD"] for f in fspecs})
        replicas.lookup(rucio, fspecs, use_vp, ALLOWED, None, [])
        assert rucio.asked == [(len(fspecs), schemes)]


def test_direct_access_preference_is_respected():
    class Queue:
        direct_access_lan = True
        allow_wan = False
        astorages = {"read_lan": ["XRD"]}

    fspecs = files(12)
    rucio = SchemeRucio({"XRD": ["root", "davs"]}, {f.lfn: ["XRD"] for f in fspecs})
    replicas.lookup(rucio, fspecs, False, ALLOWED, Queue(), ["davs"])
    assert rucio.asked == [(12, None), (12, replicas.query_schemes(ALLOWED))]


def test_storage_schemes_keeps_only_read_protocols():
    rucio = SchemeRucio({"XRD": ["root", "davs"]}, {})
    assert replicas.storage_schemes(rucio, "XRD") == ["root", "davs"]
    assert replicas.storage_schemes(SchemeRucio({}, {}), "NONE") == []
