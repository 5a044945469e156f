//! Okta: the serde models of the Users API and System Log answers the Okta collectors read
//! (collectors to come), checked against Okta's published contract.

pub mod models;

#[cfg(test)]
mod contract;
