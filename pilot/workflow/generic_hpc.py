"""The HPC workflow (``-w generic_hpc``): one pilot per MPI rank, one job per rank, Harvester files only.

On an HPC system Harvester stages the inputs into the worker's access point on the shared file
system, starts ``mpirun``/``srun`` with one pilot per rank, and reads back what the pilots write
there. No pilot talks to the PanDA server or moves a file. Each rank:

1. finds its MPI rank from the launcher's environment (:mod:`pilot.api.environment`) and its job
   through the resource plug-in (``--hpc-resource``, default ``generic``: the rank-th PandaID of
   ``worker_pandaids.json``, its definition in ``<PandaID>/HPCJobs.json``);
2. runs the experiment plug-in's payload command in ``<access point>/<PandaID>`` (or a scratch copy)
   under the payload guard, keeping ``worker_attributes.json`` up to date (starting, running, final);
3. stops the payload early enough when the batch slot or the job's maxWalltime is about to end
   (1213), or when the rank is signalled (the signal's code), so its reports are always written;
4. writes the trimmed ``jobReport.json``, the log tarball and ``event_status.dump.json`` (outputs and
   log with ``type``, ``path``, ``guid``, ``fsize``, ``chksum``), then the final attributes.

Rank 0 has a second role (``[HPC] rank0_services``): it runs the Services API beside its payload —
the memory monitor on its payload tree (prmon files in its job dir, memory fields in its attributes)
and, before the payload, the CPU benchmark with as many processes as the job has cores — and
writes the benchmark results to ``<access point>/benchmark_results.json``, where Harvester finds them
(and POSTs them to ``[Benchmark] url`` when one is set).

Pilot 2 crashed in this workflow: a missing job list or definition ended in an AttributeError on
``None``, a failure before the trace object existed in an UnboundLocalError, the outputs were
declared with ``filetype`` where Harvester reads ``type``, and the payload was neither timed out nor
stopped on a signal. Here every failure is a coded error in the job's final attributes.
The process exit status is the job's first error code (0 for a finished job or a rank without job).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info.jobdata import JobData, JobPhase
from pilot.util import constants as c
from pilot.util.batch import batch_info
from pilot.util.config import config
from pilot.util.filehandling import calculate_checksum
from pilot.util.harvester import FileNames, HarvesterDirs, worker_attributes, write_json
from pilot.util.runner import start as start_activity

if TYPE_CHECKING:
    from pilot.control.context import Communicator
    from pilot.control.payloads.generic import PayloadExecutor
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

HANDLED_SIGNALS = ("SIGINT", "SIGTERM", "SIGQUIT", "SIGUSR1", "SIGXCPU", "SIGBUS")


def run(args: Any, mainworkdir: Optional[str] = None, infosys: Any = None,
        communicator: Optional[Communicator] = None) -> int:
    """Run this rank's job; return the pilot-level error code (0 on success or without a job)."""
    return HpcRank(args, mainworkdir or os.getcwd(), infosys).run()


def _margin(limit: float) -> float:
    value = config.get("Pilot", "lifetime_safety_margin", 600)
    try:
        margin = float(value)
    except (TypeError, ValueError):
        margin = 600.0
    return max(0.0, min(margin, limit / 2.0))


class HpcRank:
    """One rank of an HPC worker: its job, its payload, its reports (and rank 0's services)."""

    def __init__(self, args: Any, mainworkdir: str, infosys: Any = None) -> None:
        from pilot.api.environment import rank_info

        self.args = args
        self.mainworkdir = mainworkdir
        self.infosys = infosys
        self.start_time = time.time()
        self.rank = rank_info()
        self.names = FileNames.from_config()
        self.access = HarvesterDirs.from_args(args, mainworkdir, names=self.names).access_point
        self.wake = threading.Event()
        self.signal_name: Optional[str] = None
        self.job: Optional[JobData] = None
        self.work_dir = ""
        self.site: Any = None
        self.monitor: Any = None

    # ------------------------------------------------------------------ main line
    def run(self) -> int:
        logger.info("HPC rank %d of %d (%s) on %s, access point %s", self.rank.rank, self.rank.size,
                    self.rank.launcher or "no MPI launcher", os.uname().nodename, self.access)
        self._install_signal_handlers()
        from pilot.resource import load_resource

        try:
            resource = load_resource(getattr(self.args, "hpc_resource", "") or "generic")
            self.job, _ = resource.get_job(self.access, self.rank.rank)
        except PilotException as exc:
            logger.error("rank %d: cannot get its job: %s", self.rank.rank, exc.diag)
            return exc.get_error_code()
        if self.job is None:
            logger.info("rank %d has no job: nothing to do", self.rank.rank)
            return 0
        job = self.job
        job.timing[c.PILOT_PRE_GETJOB] = job.timing[c.PILOT_POST_GETJOB] = job.starttime
        try:
            self.work_dir = resource.set_job_workdir(job, self.access)
            self._make_site()
            self._publish()
            if not job.errors:
                self._run_job(resource)
        except PilotException as exc:
            job.fail(exc.get_error_code(), exc.get_detail())
        except Exception as exc:  # anything unexpected still ends in a final report
            logger.exception("rank %d: job %s failed: %s", self.rank.rank, job.jobid, exc)
            job.fail(ErrorCodes.UNKNOWNEXCEPTION, f"{type(exc).__name__}: {exc}")
        finally:
            self._finish()
        return job.errors.first()[0]

    def _run_job(self, resource: Any) -> None:
        job = self.job
        assert job is not None
        job.advance(JobPhase.VALIDATED)
        job.advance(JobPhase.STAGEIN)  # Harvester placed the inputs
        job.timing[c.PILOT_PRE_STAGEIN] = time.time()
        scratch = resource.set_scratch_workdir(job, self.work_dir, self.args)
        job.workdir = scratch
        for spec in job.indata + job.outdata + job.logdata:
            spec.workdir = scratch
        job.timing[c.PILOT_POST_STAGEIN] = time.time()
        if self.rank.is_rank_zero and self._rank0_services():
            self._benchmark()
        executor = self._executor()
        line = executor.command()
        setup = [s for s in (resource.get_setup(job) or []) if s and s.strip()]
        line = resource.command_fix(line, scratch)
        if setup:
            line = "; ".join(setup + [line])
        job.timing[c.PILOT_PRE_PAYLOAD] = time.time()
        job.advance(JobPhase.PAYLOAD)
        self._publish()
        status = self._execute(executor, line)
        job.timing[c.PILOT_POST_PAYLOAD] = time.time()
        self._payload_result(status)
        self._after_payload(resource, scratch)

    # ------------------------------------------------------------------ payload
    def _executor(self) -> Any:
        from pilot.control.payloads.generic import PayloadExecutor
        from pilot.workflow.generic import UserPlugins

        assert self.job is not None  # run() returned early when the rank got no job
        return PayloadExecutor(self.job, UserPlugins(self.args.pilot_user))

    def _execute(self, executor: PayloadExecutor, line: str) -> dict:
        """Run the payload; stop it at the deadline or on a signal; the guard's status record."""
        job = self.job
        assert job is not None
        done = threading.Event()
        outcome: dict = {}

        def wait() -> None:
            try:
                outcome.update(executor.wait())
            finally:
                done.set()
                self.wake.set()

        executor.start(line)
        if self.rank.is_rank_zero and self._rank0_services():
            self._start_memory_monitor(executor.proc.pid)
        waiter = start_activity(f"payload-wait-{job.jobid}", wait, label="payload-wait")
        deadline, why = self._deadline()
        killed = False
        while not done.is_set():
            left = None if deadline is None else deadline - time.time()
            if not killed and left is not None and left <= 0:
                job.fail(ErrorCodes.REACHEDMAXTIME, why)
                executor.kill(why)
                killed = True
            elif not killed and self.signal_name:
                job.fail(ErrorCodes.get_kill_signal_error_code(self.signal_name),
                         f"the pilot received {self.signal_name}", priority=True)
                executor.kill(f"the pilot received {self.signal_name}")
                killed = True
            self.wake.wait(None if killed or left is None else max(0.05, left))
            self.wake.clear()
        waiter.join()
        self._stop_memory_monitor()
        return outcome

    def _deadline(self) -> tuple:
        """(epoch time to stop the payload, reason): the batch slot's end or the job's maxWalltime."""
        job = self.job
        assert job is not None
        candidates = []
        slot = batch_info(started=self.start_time)
        if slot.end_time is not None:
            limit = slot.end_time - self.start_time
            candidates.append((slot.end_time - _margin(limit),
                               f"the {slot.system} batch slot ends in {_margin(limit):.0f} s: payload stopped"))
        if job.maxwalltime:
            limit = float(job.maxwalltime)
            candidates.append((job.starttime + limit - _margin(limit),
                               f"the job reached its maximum walltime of {int(limit)} s"))
        if not candidates:
            return None, ""
        return min(candidates)

    def _payload_result(self, status: dict) -> None:
        job = self.job
        assert job is not None
        exit_code = status.get("exit_code")
        sig = status.get("signal")
        job.exitcode = exit_code
        job.transexitcode = (128 + int(sig)) if sig else int(exit_code or 0) % 255
        if status.get("cpu") is not None:
            job.cpuconsumptiontime = float(status["cpu"])
        from pilot.control.payloads.generic import read_job_report

        read_job_report(job)
        if job.errors:
            return
        if sig:
            job.fail(ErrorCodes.PAYLOADEXECUTIONFAILURE, f"the payload was killed by signal {sig}")
        elif exit_code:
            job.fail(ErrorCodes.PAYLOADEXECUTIONFAILURE, f"the payload exited with {exit_code}")

    # ------------------------------------------------------------------ after the payload
    def _after_payload(self, resource: Any, scratch: str) -> None:
        from pilot.control.data import create_log_tarball
        from pilot.resource.generic import copy_back

        job = self.job
        assert job is not None
        job.advance(JobPhase.STAGEOUT)
        job.timing[c.PILOT_PRE_STAGEOUT] = time.time()
        if os.path.isfile(os.path.join(scratch, self.names.jobreport)):
            resource.process_jobreport(self.names.jobreport, scratch, self.work_dir)
        resource.postprocess_workdir(scratch)
        entries = self._outputs(scratch)
        if job.logdata:
            try:
                create_log_tarball(job, self.args.queue)
                entries += self._describe(job.logdata[0], scratch, "log")
            except (PilotException, OSError) as exc:
                job.fail(getattr(exc, "code", ErrorCodes.LOGFILECREATIONFAILURE), f"log tarball: {exc}")
        problem = copy_back([e["name"] for e in entries], scratch, self.work_dir)
        if problem:
            job.fail(ErrorCodes.FILEHANDLINGFAILURE, problem)
        for entry in entries:
            entry["path"] = os.path.join(self.work_dir, entry.pop("name"))
        if entries:
            write_json(os.path.join(self.work_dir, self.names.event_status), {job.jobid: entries})
        job.timing[c.PILOT_POST_STAGEOUT] = time.time()

    def _outputs(self, scratch: str) -> list:
        """event_status entries of the outputs the payload produced (a missing one fails the job: 1165)."""
        job = self.job
        assert job is not None
        entries = []
        for spec in job.outdata:
            path = os.path.join(scratch, spec.lfn)
            if not os.path.isfile(path):
                if not job.errors and str(job.allownooutput or "") != spec.lfn:
                    job.fail(ErrorCodes.MISSINGOUTPUTFILE, f"output file {spec.lfn} was not produced")
                continue
            entries += self._describe(spec, scratch, spec.filetype or "output")
        return entries

    @staticmethod
    def _describe(spec: FileSpec, scratch: str, kind: str) -> list:
        path = os.path.join(scratch, spec.lfn)
        spec.filesize = os.path.getsize(path)
        spec.checksum = {"adler32": calculate_checksum(path)}
        return [{"type": kind, "name": spec.lfn, "guid": spec.guid, "fsize": spec.filesize,
                 "chksum": spec.checksum["adler32"]}]

    def _finish(self) -> None:
        job = self.job
        assert job is not None
        if self.monitor is not None:
            self._stop_memory_monitor()
        job.endtime = job.endtime or time.time()
        target = JobPhase.FINISHED if not job.errors and job.phase is JobPhase.STAGEOUT else JobPhase.FAILED
        if job.phase is not target:
            job.phase = target
            job.timing[target.value] = time.time()
        self._publish(final=True)
        code, diag = job.errors.first()
        logger.info("rank %d: job %s %s%s", self.rank.rank, job.jobid, job.state,
                    f" ({code}: {diag})" if code else "")

    # ------------------------------------------------------------------ reports
    def _make_site(self) -> None:
        from pilot.util.workernode import collect
        from pilot.workflow.generic import site_info

        self.site = site_info(self.args, getattr(self.infosys, "queuedata", None), collect())

    def _publish(self, final: bool = False) -> None:
        """Rewrite ``worker_attributes.json`` in the job's directory."""
        from pilot.control.reporting import build_update

        job = self.job
        if job is None or self.site is None:
            return
        if self.monitor is not None:
            fields = self.monitor.fields()
            if fields:
                job.memory_summary = fields
        fields = build_update(job, self.site, final=final, pilot_start=self.start_time)
        fields["mpiRank"] = self.rank.rank
        try:
            write_json(os.path.join(self.work_dir, self.names.worker_attributes), worker_attributes(fields))
        except OSError as exc:
            logger.error("job %s: cannot write the worker attributes: %s", job.jobid, exc)

    # ------------------------------------------------------------------ rank 0 services
    @staticmethod
    def _rank0_services() -> bool:
        return bool(config.get("HPC", "rank0_services", True))

    def _benchmark(self) -> None:
        """Run the CPU benchmark (payload cores) and leave its results in the access point."""
        from pilot.api.benchmark import Benchmark

        job = self.job
        try:
            bench = Benchmark(context={"job": job, "queue": self.args.queue, "mpi_rank": self.rank.rank})
            bench.run()
            name = str(config.get("Benchmark", "results_file", "benchmark_results.json"))
            path = bench.write(os.path.join(self.access, name))
            logger.info("benchmark results written to %s", path)
            if bench.url:
                bench.post()
        except Exception as exc:  # the benchmark never stops the job
            logger.warning("rank 0: the benchmark failed: %s", exc)

    def _start_memory_monitor(self, pid: int) -> None:
        from pilot.api.memorymonitor import MemoryMonitoring

        job = self.job
        assert job is not None
        interval = float(config.get("Pilot", "memory_monitor_interval", 60) or 60)
        try:
            self.monitor = MemoryMonitoring(pid=pid, workdir=job.workdir, interval=interval, include_root=False)
            self.monitor.start()
        except (OSError, ValueError) as exc:
            logger.warning("rank 0: cannot start the memory monitor: %s", exc)
            self.monitor = None

    def _stop_memory_monitor(self) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        monitor.stop()
        fields = monitor.fields()
        if fields and self.job is not None:
            self.job.memory_summary = fields
        self.monitor = None

    # ------------------------------------------------------------------ signals
    def _install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            if self.signal_name is None:
                self.signal_name = signal.Signals(signum).name
            self.wake.set()

        for name in HANDLED_SIGNALS:
            try:
                signal.signal(getattr(signal, name), handler)
            except (ValueError, OSError, AttributeError):
                pass
