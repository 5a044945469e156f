//! lastseen's deprovisioning: reviewers' decisions in (`review import`), a plan of SCIM
//! deactivations with every guard re-read live, an approval pinning the plan's hash, an apply
//! that journals intent and outcome in the lake and resumes after a crash, and its undo.
//!
//! ```text
//! review export ─▶ filled-in file ─▶ decisions::read ─▶ review_decisions (lake)
//!                                            plan::build ─▶ plan.json (hash) ─▶ apply::approve ─▶ approved.json
//!                                  apply::apply ─▶ SCIM PATCH active:false, deprovision_actions (lake journal)
//! ```

pub mod apply;
pub mod decisions;
mod error;
pub mod journal;
pub mod plan;
pub mod slack;

pub use error::{DeprovisionError, Result, sha256_hex};
