//! mlserve: train classic tabular models, keep them as versioned artifacts, and serve them.
//!
//! The modules follow the data: [`data`] → [`train`] → [`model`].

pub mod data;
pub mod model;
pub mod train;
