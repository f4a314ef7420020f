# Release commands (the README's two commands, demo and tests, are scripts/demo.sh and scripts/test.sh).
.PHONY: dist bump-build wheel clean-dist

# the pilot tarball for sites: dist/pilot-<version>.tar.gz and dist/pilot.tar.gz
dist:
	bash scripts/make-dist.sh

# one more build number in PILOTVERSION, then the tarball (commit PILOTVERSION with the release)
bump-build:
	bash scripts/make-dist.sh --bump

# the wheel for pip users: dist/panda_pilot_ng-<version>-py3-none-any.whl
wheel:
	python3 -m pip wheel --no-deps -w dist .

clean-dist:
	rm -rf dist build *.egg-info
