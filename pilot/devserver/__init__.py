"""PanDA-protocol development server.

A small, real HTTP/HTTPS server on 127.0.0.1 that speaks the PanDA job-dispatcher protocol
(getJob, updateJob, event ranges, ...), serves queue and storage data in the shapes Pilot 2 and
Pilot 3 read, accepts Rucio traces, stores everything in SQLite and can be told to fail.

Entry points: ``python -m pilot.devserver serve|submit|show|jobs|wait|command|inject|reset`` and
``pilot.devserver.control.DevServer`` / ``InProcessDevServer`` for tests and scripts;
``pilot.devserver.samples.sample_job`` makes a job with real input files on the local storage.
The package uses only the standard library and ``cryptography`` and imports nothing else from the pilot.
"""
