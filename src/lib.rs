//! mlserve: train classic tabular models, keep them as versioned artifacts, and serve them.
//!
//! The modules follow the data: [`data`] → [`train`] → [`model`] → [`serve`], with [`import`]
//! beside [`train`] for models exported as ONNX, [`store`] for the prediction log, [`config`]
//! for the server's settings and [`logging`] for its log lines.

pub mod config;
pub mod data;
pub mod import;
pub mod logging;
pub mod model;
pub mod serve;
pub mod store;
pub mod train;
