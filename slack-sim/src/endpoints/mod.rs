//! Method families added on top of the core in `api`: one module per family, each owning its
//! Slack response shapes and error codes.

pub(crate) mod admin;
pub(crate) mod analytics;
pub(crate) mod audit;
pub(crate) mod billing;
pub(crate) mod scim;
pub(crate) mod usergroups;
pub(crate) mod users;

#[cfg(test)]
mod contract_tests;
