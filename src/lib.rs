//! mlserve: train classic tabular models, keep them as versioned artifacts, and serve them.
//!
//! The modules follow the data: [`data`] → [`train`] → [`model`] → [`serve`], with
//! [`config`] for the server's settings and [`logging`] for its log lines.

pub mod config;
pub mod data;
pub mod logging;
pub mod model;
pub mod serve;
pub mod store;
pub mod train;
