//! End-to-end tests: the `lastseen` binary against the Slack simulator over loopback HTTP,
//! writing a real lake, compared with the simulator's ground truth.

mod support;

mod backfill;
mod collect;
mod conditions;
mod conditions_gaps;
mod config_cli;
mod correlation;
mod daemon;
mod delta;
mod deploy;
mod deprovision;
mod e2e;
mod exports;
mod hostile;
mod lake_safety;
mod lifecycle;
mod okta_derived;
mod operations;
mod pipeline_lib;
mod reports;
mod rollups;
mod s3;
mod secrets;
mod serve;
mod simulate;
