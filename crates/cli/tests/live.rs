//! `cutover local serve` in a real browser: headless Chromium driven through Debian's
//! ChromeDriver (WebDriver's JSON over HTTP, spoken here with the standard library). The page
//! shows what the run's API answers, its Approve button decides the gate through that API (the
//! run goes on and completes), and the page loads nothing from elsewhere.
//!
//! The browser is `CUTOVER_CHROMIUM` or `/usr/bin/chromium`, the driver `CUTOVER_CHROMEDRIVER` or
//! `/usr/bin/chromedriver`; without them the test fails, unless `CUTOVER_SKIP_BROWSER=1` says to
//! skip it. `CUTOVER_SCREENSHOTS=DIR` keeps the page's screenshot there (docs/images/live-run.png).

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tool(var: &str, debian: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(var) {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(debian);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CUTOVER_SKIP_BROWSER").as_deref() == Ok("1") {
        return None;
    }
    panic!("no {debian}: install Debian's chromium and chromium-driver (scripts/test does), set {var}, or CUTOVER_SKIP_BROWSER=1");
}

/// Chromium and ChromeDriver, or None where the browser tests are skipped.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    Some((
        tool("CUTOVER_CHROMIUM", "/usr/bin/chromium")?,
        tool("CUTOVER_CHROMEDRIVER", "/usr/bin/chromedriver")?,
    ))
}

/// One HTTP/1.1 request to 127.0.0.1:port: the status and the body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    // Not listening yet (the driver starting): status 0, which the callers poll past.
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    // Read the head, then the body by its length or its chunks: a server may keep the
    // connection open whatever the request asked.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let complete = |raw: &[u8]| -> Option<(String, String)> {
        let text = String::from_utf8_lossy(raw).to_string();
        let (head, rest) = text.split_once("\r\n\r\n")?;
        let lower = head.to_ascii_lowercase();
        if lower.contains("transfer-encoding: chunked") {
            let mut out = String::new();
            let mut rest = rest;
            loop {
                let (size, after) = rest.split_once("\r\n")?;
                let n = usize::from_str_radix(size.trim(), 16).ok()?;
                if n == 0 {
                    return Some((head.to_string(), out));
                }
                if after.len() < n {
                    return None;
                }
                out.push_str(&after[..n]);
                rest = after[n..].trim_start_matches("\r\n");
            }
        }
        let length = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        (rest.len() >= length).then(|| (head.to_string(), rest[..length].to_string()))
    };
    let (head, body) = loop {
        if let Some(done) = complete(&raw) {
            break done;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break complete(&raw).unwrap_or_default(),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body)
}

fn json_of(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let (_, b) = http(port, method, path, body);
    serde_json::from_str(&b).unwrap_or(Value::Null)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory under the system's temporary one, removed at the end.
struct TempDir(PathBuf);
impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "cutover-live-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example(name: &str, file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name)
            .join(file),
    )
    .unwrap()
}

/// Polls `f` every 200 ms until it answers Some, for at most `secs`.
fn until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "waited {secs}s for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `cutover local serve ARGS --port 0 --exit-after 3`: the process and the port it printed.
fn serve(args: &[&std::ffi::OsStr]) -> (Killed, u16, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["local", "serve", "--port", "0", "--exit-after", "3"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cutover local serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let port: u16 = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (Killed(child), port, url)
}

/// One headless Chromium session through ChromeDriver.
struct Browser {
    port: u16,
    session: String,
    _driver: Killed,
}

impl Browser {
    fn start(chromium: &Path, driver: &Path, profile: &Path) -> Browser {
        let port = free_port();
        let driver = Killed(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver"),
        );
        until(20, "chromedriver", || {
            (json_of(port, "GET", "/status", None)["value"]["ready"] == json!(true)).then_some(())
        });
        let session = json_of(
            port,
            "POST",
            "/session",
            Some(
                &json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                    "binary": chromium.display().to_string(),
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--window-size=1280,900", format!("--user-data-dir={}", profile.display())]
                }}}}),
            ),
        );
        let session = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_string();
        Browser {
            port,
            session,
            _driver: driver,
        }
    }
    fn wd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        json_of(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )
    }
    fn goto(&self, url: &str) {
        self.wd("POST", "/url", Some(json!({ "url": url })));
    }
    /// WebDriver's element reference key; an error answers {"error", "message"} instead.
    fn id_of(v: &Value) -> Option<String> {
        v["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .map(str::to_string)
    }
    fn find(&self, css: &str) -> Option<String> {
        let v = self.wd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        Self::id_of(&v["value"])
    }
    fn count(&self, css: &str) -> usize {
        let v = self.wd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v["value"].as_array().map_or(0, |a| a.len())
    }
    fn text_of(&self, css: &str) -> String {
        self.find(css)
            .map(|e| {
                self.wd("GET", &format!("/element/{e}/text"), None)["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default()
    }
    fn click(&self, element: &str) {
        self.wd(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }
    /// Keeps a screenshot as DIR/name with `CUTOVER_SCREENSHOTS=DIR`.
    fn keep_screenshot(&self, name: &str) {
        if let Ok(out) = std::env::var("CUTOVER_SCREENSHOTS") {
            let png = self.wd("GET", "/screenshot", None);
            let bytes = base64_decode(png["value"].as_str().unwrap());
            std::fs::write(Path::new(&out).join(name), bytes).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.wd("DELETE", "", None);
    }
}

#[test]
fn the_live_page_shows_the_run_and_its_approve_button_decides_the_gate() {
    let Some((chromium, driver)) = browser_tools() else {
        return;
    };
    let dir = TempDir::new();
    // The DMS example without its scripted approver: the gate before 50 % waits for the page.
    let world = example("dms-happy-path", "world.yaml")
        .lines()
        .filter(|l| !l.starts_with("approvals:"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("world.yaml"), world).unwrap();
    std::fs::write(
        dir.path().join("plan.yaml"),
        example("dms-happy-path", "plan.yaml"),
    )
    .unwrap();
    let plan = dir.path().join("plan.yaml");
    let world = dir.path().join("world.yaml");
    let (mut serve, port, url) = serve(&[
        "--speed".as_ref(),
        "400".as_ref(),
        "--plan".as_ref(),
        plan.as_os_str(),
        "--world".as_ref(),
        world.as_os_str(),
    ]);

    // The page loads nothing from elsewhere: no external address in it, and the server's
    // content security policy allows its own origin only.
    let (status, page) = http(port, "GET", "/", None);
    assert_eq!(status, 200);
    for external in ["http://", "https://", "src=\"//", "href=\"//"] {
        assert!(!page.contains(external), "the page names {external}");
    }

    let browser = Browser::start(&chromium, &driver, &dir.path().join("profile"));
    browser.goto(&url);
    // The page shows what the API answers.
    until(20, "the application's name on the page", || {
        (browser.text_of("#application") == "orders").then_some(())
    });
    let live = json_of(port, "GET", "/api/live", None);
    let run_id = live["runId"].as_str().unwrap().to_string();
    assert!(browser.text_of("#run").contains(&run_id));
    // The gate opens; the page's Approve button decides it through the API.
    let approve = until(60, "the gate's Approve button", || {
        browser.find("button.decide[data-decision='approve'][data-gate='before-50']")
    });
    let asked = json_of(port, "GET", &format!("/api/runs/{run_id}"), None);
    assert_eq!(asked["pendingGates"][0]["gate"], "before-50", "{asked}");
    browser.click(&approve);
    let decided = until(20, "the decision in the run", || {
        let r = json_of(port, "GET", &format!("/api/runs/{run_id}"), None);
        r["approvals"]
            .as_array()?
            .iter()
            .find(|a| a["gate"] == "before-50" && a["decision"] == "approve")
            .cloned()
    });
    assert_eq!(
        decided["decidedBy"], "local-operator@localhost",
        "{decided}"
    );
    // The page says what the API answered.
    until(10, "the page to show the API's answer", || {
        browser
            .text_of("#answer")
            .contains("gate before-50: approve by local-operator@localhost")
            .then_some(())
    });
    // The run goes on past the gate and completes; the page says so.
    until(60, "the page to say completed", || {
        (browser.text_of("#outcome") == "completed").then_some(())
    });
    assert_eq!(browser.text_of("#weight-green"), "green 100");
    browser.keep_screenshot("live-run.png");
    drop(browser);
    // The server stops 3 s after the run ended, with the run's exit code.
    let status = until(30, "cutover local serve to exit", || {
        serve.0.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_live_wave_page_shows_every_application_filters_them_and_opens_each_run() {
    let Some((chromium, driver)) = browser_tools() else {
        return;
    };
    let dir = TempDir::new();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wave-12");
    let wave = examples.join("wave.yaml");
    let world = examples.join("world.yaml");
    // wave-12: inventory rolls back, which blocks orders, shipping and reporting; the other
    // eight complete (about an hour simulated, seven seconds here).
    let (mut serve, _port, url) = serve(&[
        "--speed".as_ref(),
        "500".as_ref(),
        "--wave".as_ref(),
        wave.as_os_str(),
        "--world".as_ref(),
        world.as_os_str(),
    ]);
    let browser = Browser::start(&chromium, &driver, &dir.path().join("profile"));
    browser.goto(&url);
    until(20, "twelve rows", || {
        (browser.count("#wave-rows tr") == 12).then_some(())
    });
    assert_eq!(browser.text_of("#application"), "wave wave-12");
    // Some application runs while the wave does.
    until(30, "an application running", || {
        (browser.count("#wave-rows .badge.running") > 0).then_some(())
    });
    until(60, "the wave to end", || {
        (browser.text_of("#outcome") == "partial").then_some(())
    });
    browser.keep_screenshot("live-wave.png");
    let click_filter = |name: &str| {
        let b = browser.find(&format!("#filter-{name}")).expect("filter");
        browser.click(&b);
    };
    click_filter("completed");
    until(10, "eight completed", || {
        (browser.count("#wave-rows tr") == 8).then_some(())
    });
    // Not completed: inventory, and the three it blocked (orders, then shipping and reporting).
    click_filter("not-completed");
    until(10, "four not completed", || {
        (browser.count("#wave-rows tr") == 4).then_some(())
    });
    assert_eq!(browser.count("#wave-rows .badge.blocked"), 3);
    assert_eq!(
        browser.text_of("#wave-rows tr[data-application='orders'] .badge"),
        "blocked"
    );
    // inventory's run, from its link: the run's own page, with the way back.
    let link = browser
        .find("#wave-rows tr[data-application='inventory'] td a")
        .unwrap();
    browser.click(&link);
    until(10, "inventory's run", || {
        (browser.text_of("#application") == "inventory"
            && browser.text_of("#outcome") == "rolled back")
            .then_some(())
    });
    assert!(browser.find("#back a").is_some());
    drop(browser);
    // A wave with an application not completed exits 5 (docs/cli.md).
    let status = until(30, "cutover local serve to exit", || {
        serve.0.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(5));
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        let v = A.iter().position(|a| *a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
