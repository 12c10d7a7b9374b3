"""The report-job engine both vendors share, one question per module (the map: docs/architecture.md):

- job.py: what a job is (Window, JobResult, JobStatus, JobPhase, the job errors);
- vendor.py: what a vendor's job API offers the engine (VendorJobs), and what every vendor does alike;
- planner.py: which windows a run reads (a pure function of the bookmark and recorded jobs);
- engine.py: how many jobs at once, polling, results in window order;
- runner.py: one job's life: create or resume, poll, create again;
- reader.py: one window's rows, exactly once;
- state.py: jobs in the STATE, and jobs created but not yet in one;
- records.py: the job-record streams (talkdesk_report_jobs, myreports_requests);
- services.py: what the tap hands each stream for a run (engine, unsaved jobs, job records, writers);
- stream.py: ReportJobStream, the glue to the SDK's Stream (its private-member overrides: ../sdk_hooks.py).
"""
