//! Watching the repository folder: a change (a new version folder renamed into place, an
//! edited manifest) triggers a rescan once the folder has been quiet for a moment.

use crate::model::Repository;
use notify::{RecursiveMode, Watcher};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// How long the folder must be quiet before a rescan: a copy in progress raises many events.
const QUIET_PERIOD: Duration = Duration::from_millis(250);

/// Keeps the watcher alive; dropping it stops watching.
pub struct RepositoryWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `repository`'s folder; rescans run on a thread of their own.
pub fn watch(repository: Arc<Repository>) -> notify::Result<RepositoryWatcher> {
    let (sender, receiver) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = sender.send(());
        }
    })?;
    std::fs::create_dir_all(repository.dir()).map_err(notify::Error::io)?;
    watcher.watch(repository.dir(), RecursiveMode::Recursive)?;
    std::thread::Builder::new()
        .name("mlserve-watch".into())
        .spawn(move || {
            // Ends when the watcher (and with it the sender) is dropped.
            while receiver.recv().is_ok() {
                while receiver.recv_timeout(QUIET_PERIOD).is_ok() {}
                tracing::debug!("repository changed; rescanning");
                repository.reload_all(false);
            }
        })
        .map_err(notify::Error::io)?;
    Ok(RepositoryWatcher { _watcher: watcher })
}
