//! Places among the requests in flight (`max_concurrent_requests`), shared by every transport:
//! a request beyond the limit is refused at once rather than queued until it times out.

use super::super::state::App;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A place among the requests in flight, given back when dropped.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place among the `max_concurrent_requests` in flight (shared by every transport), or the
/// message refusing the request (counted in `mlserve_requests_shed_total`) when there is none.
pub fn take_slot(app: &App) -> Result<Slot, String> {
    let limit = app.settings.max_concurrent_requests;
    let in_flight = app.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
    let slot = Slot(app.in_flight.clone());
    if in_flight > limit {
        metrics::counter!("mlserve_requests_shed_total").increment(1);
        return Err(format!(
            "the server is at its limit of {limit} requests in flight (setting max_concurrent_requests)"
        ));
    }
    Ok(slot)
}
