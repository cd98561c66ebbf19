//! A real headless Chromium, driven over WebDriver by chromedriver (Debian packages chromium
//! and chromium-driver, which .ci/run installs). MLSERVE_CHROMEDRIVER and MLSERVE_CHROMIUM
//! point at other binaries.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process and a browser session in it; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    pub downloads: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromedriver() -> String {
    std::env::var("MLSERVE_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_string())
}

fn chromium() -> Option<String> {
    std::env::var("MLSERVE_CHROMIUM").ok().or_else(|| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .find(|path| Path::new(path).exists())
            .map(|path| path.to_string())
    })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with JavaScript on or off.
    pub async fn start(javascript: bool) -> Browser {
        let port = free_port();
        let mut command = Command::new(chromedriver());
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so that a failing test can end chromedriver and every
        // browser process it started together.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot start chromedriver ({error}): install the Debian packages chromium and \
                     chromium-driver (.ci/run does), or set MLSERVE_CHROMEDRIVER"
            )
        });
        let downloads = tempfile::tempdir().unwrap();
        let mut options = json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--hide-scrollbars", "--lang=en-US",
            ],
            "prefs": {
                "download.default_directory": downloads.path().to_str().unwrap(),
                "download.prompt_for_download": false,
                "profile.managed_default_content_settings.javascript": if javascript { 1 } else { 2 },
            },
        });
        if let Some(binary) = chromium() {
            options["binary"] = json!(binary);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let attempt =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await;
            match attempt {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("cannot open a Chromium session: {error}"),
            }
        };
        Browser {
            client,
            driver,
            downloads,
        }
    }

    /// Sets the window's size in CSS pixels.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize the window");
    }

    /// Waits for an element, up to 10 s.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element {css}: {error}"))
    }

    /// The text of an element, waiting for it to appear.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Replaces the value of an input by typing.
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Saves a screenshot of the window as test output (target/ui-screenshots/NAME.png).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Waits until a file with this name is completely downloaded, and reads it.
    pub async fn downloaded(&self, name: &str) -> String {
        let path = self.downloads.path().join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Chromium may create the file under its final name before it writes the bytes
            // (into a `.crdownload` beside it): done once that is gone and the file holds data.
            if let Ok(text) = std::fs::read_to_string(&path)
                && !text.is_empty()
                && !self.download_in_progress()
            {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no download {name}; the folder holds {:?}",
                std::fs::read_dir(self.downloads.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether Chromium is still writing a download (a `.crdownload` file exists).
    fn download_in_progress(&self) -> bool {
        std::fs::read_dir(self.downloads.path()).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"))
        })
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: target/ui-screenshots.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ui-screenshots")
}

impl Browser {
    /// Runs axe-core (WCAG 2 A and AA rules) on the current page and returns its violations,
    /// one line each. MLSERVE_TEST_AXE names axe.min.js (scripts/test.sh installs it).
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let path = std::env::var("MLSERVE_TEST_AXE").expect(
            "MLSERVE_TEST_AXE names axe-core's axe.min.js; scripts/test.sh installs it and sets it",
        );
        let source = std::fs::read_to_string(&path).unwrap();
        self.client
            .execute(&format!("{source}\nreturn 1;"), vec![])
            .await
            .expect("inject axe-core");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                   .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' +
                       v.nodes.map(n => n.target.join(' ')).join(', '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        serde_json::from_value(result).unwrap()
    }
}
