//! The web dashboard in a real browser: headless Chromium (Debian's
//! `chromium`, installed by `scripts/test.sh`) against a real coordinator,
//! node and jobs. The numbers on each page must equal what the CLI prints as
//! JSON for the same token; login is required; a tenant sees none of
//! another tenant's jobs; a revoked token's session ends. Screenshots (a
//! desktop and a phone width) go to `target/screenshots/`.

use std::ffi::OsStr;
use std::path::PathBuf;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::types::Bounds;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;
use suanli_e2e::http::request;
use suanli_e2e::procs::{NodeExtras, ProcCluster};
use suanli_e2e::{guest_dir, guest_wasm, ok_json, suanli, workspace_root};

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser() -> Browser {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium package"
    );
    let options = LaunchOptions::default_builder()
        .path(Some(PathBuf::from(CHROMIUM)))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1280, 900)))
        .idle_browser_timeout(std::time::Duration::from_secs(120))
        .args(vec![
            OsStr::new("--disable-gpu"),
            OsStr::new("--disable-quic"),
            OsStr::new("--no-first-run"),
            OsStr::new("--disable-background-networking"),
            OsStr::new("--disable-component-update"),
            OsStr::new("--disable-sync"),
        ])
        .build()
        .expect("launch options");
    Browser::new(options).expect("chromium starts")
}

fn screenshot(tab: &Tab, name: &str) {
    let dir = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Loads `url` and waits until the new document has loaded (the old one
/// is marked first, so a query never reads the page being left).
fn open(tab: &Tab, url: &str) {
    tab.evaluate("window.__leaving = true", false).unwrap();
    tab.navigate_to(url).unwrap();
    wait_for_new_page(tab);
}

fn wait_for_new_page(tab: &Tab) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let state = tab
            .evaluate("window.__leaving ? 'old' : document.readyState", false)
            .ok()
            .and_then(|r| r.value)
            .and_then(|v| v.as_str().map(str::to_owned));
        if state.as_deref() == Some("complete") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page did not load"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Evaluates `js` (which returns a JSON string) in the page.
fn eval(tab: &Tab, js: &str) -> Value {
    let got = tab.evaluate(js, false).unwrap();
    let text = got.value.and_then(|v| v.as_str().map(str::to_owned));
    serde_json::from_str(&text.unwrap_or_else(|| panic!("{js} gave no string"))).unwrap()
}

/// The rows of a table: each `[data-field]` cell's text by field name.
fn rows(tab: &Tab, table: &str) -> Vec<Value> {
    let js = format!(
        "JSON.stringify([...document.querySelectorAll('{table} tbody tr')].map(r => \
         Object.fromEntries([...r.querySelectorAll('[data-field]')].map(c => \
         [c.dataset.field, c.textContent.trim()]))))"
    );
    eval(tab, &js).as_array().cloned().unwrap_or_default()
}

fn text(tab: &Tab, selector: &str) -> String {
    tab.wait_for_element(selector)
        .unwrap()
        .get_inner_text()
        .unwrap()
        .trim()
        .to_owned()
}

/// Page text of an amount or a time (`12.345678`, `0.001234567`) back to
/// its integer (micro-units, nanoseconds): what the CLI's JSON holds.
fn integer(shown: &str) -> u64 {
    shown
        .replace('.', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {shown:?}"))
}

/// Puts `token` into the login form, clicks "Log in" and waits for the
/// page it leads to.
fn submit_login(tab: &Tab, base: &str, token: &str) {
    open(tab, &format!("{base}/login"));
    tab.wait_for_element("#token").unwrap().click().unwrap();
    // Inserted as one piece of text: typing key by key takes 0.2 s a key.
    tab.send_character(token).unwrap();
    tab.evaluate("window.__leaving = true", false).unwrap();
    tab.wait_for_element("#login").unwrap().click().unwrap();
    wait_for_new_page(tab);
}

fn login(tab: &Tab, base: &str, token: &str) {
    submit_login(tab, base, token);
    tab.wait_for_element("#viewer").unwrap();
}

fn logout(tab: &Tab) {
    tab.evaluate("window.__leaving = true", false).unwrap();
    tab.wait_for_element("header form button")
        .unwrap()
        .click()
        .unwrap();
    wait_for_new_page(tab);
    tab.wait_for_element("#token").unwrap();
}

/// The page's usage table equals `suanli usage --by KEY --format json`.
fn assert_usage_matches(tab: &Tab, cli: &Value, key: &str) {
    let page = rows(tab, "#usage");
    let cli = cli.as_array().unwrap();
    assert_eq!(page.len(), cli.len(), "page {page:?} vs cli {cli:?}");
    for (p, c) in page.iter().zip(cli) {
        assert_eq!(p["key"], c[key], "{p} vs {c}");
        assert_eq!(p["attempts"].as_str().unwrap(), c["attempts"].to_string());
        for (field, json) in [
            ("gpu", "gpu_ns"),
            ("billed", "charged_gpu_ns"),
            ("wall", "wall_ns"),
            ("cost", "cost_micros"),
        ] {
            assert_eq!(
                integer(p[field].as_str().unwrap()),
                c[json].as_u64().unwrap(),
                "{field} of {p} vs {c}"
            );
        }
    }
}

struct Setup {
    cluster: ProcCluster,
    base: String,
    alice: String,
    bob: String,
    alice_jobs: Vec<u64>,
    bob_job: u64,
}

fn setup() -> Setup {
    let cluster = ProcCluster::start_ext(
        1,
        2,
        NodeExtras::default(),
        &["--http", "127.0.0.1:0", "--utilisation-interval", "1s"],
    );
    let base = format!("http://{}", cluster.http_addr());
    cluster.set_price("default", "2.5");
    let (alice, bob) = (
        cluster.token("tenant", "alice"),
        cluster.token("tenant", "bob"),
    );
    guest_wasm("vector_add");
    let job = guest_dir().join("vector_add.wasm");
    // Alice's second job prints three 1,023-byte lines: a log to show.
    guest_wasm("misbehave");
    let printer = guest_dir().join("misbehave.wasm");
    let input = cluster.dir.path().join("print-input");
    std::fs::write(&input, "print 3").unwrap();
    let submit = |token: &str, job: &std::path::Path, input: Option<&std::path::Path>| {
        let [address, fingerprint] = cluster.conn();
        let env = [address, fingerprint, ("SUANLI_TOKEN", token)];
        let mut args = vec!["submit", job.to_str().unwrap(), "--wait", "--json"];
        if let Some(input) = input {
            args.extend(["--input", input.to_str().unwrap()]);
        }
        let done = ok_json(&suanli(&args, &env));
        assert_eq!(done["state"], "succeeded", "{done}");
        done["id"].as_u64().unwrap()
    };
    let alice_jobs = vec![
        submit(&alice, &job, None),
        submit(&alice, &printer, Some(&input)),
    ];
    let bob_job = submit(&bob, &job, None);
    Setup {
        cluster,
        base,
        alice,
        bob,
        alice_jobs,
        bob_job,
    }
}

impl Setup {
    /// `suanli ARGS --format json` (or `--json`) as `token`.
    fn cli(&self, token: &str, args: &[&str]) -> Value {
        let [address, fingerprint] = self.cluster.conn();
        ok_json(&suanli(
            args,
            &[address, fingerprint, ("SUANLI_TOKEN", token)],
        ))
    }

    fn admin(&self, args: &[&str]) -> Value {
        let mut all = vec!["--config", self.cluster.config.as_str()];
        all.extend(args);
        ok_json(&suanli(&all, &[]))
    }
}

#[test]
fn the_dashboard_shows_each_role_what_the_cli_shows_it() {
    let s = setup();
    let browser = browser();
    let tab = browser.new_tab().unwrap();

    // Login is required, and a bad token is turned away.
    open(&tab, &s.base);
    assert!(tab.get_url().ends_with("/login"), "{}", tab.get_url());
    screenshot(&tab, "login");
    submit_login(&tab, &s.base, "sl_not-a-token");
    assert!(text(&tab, "#login-error").contains("not valid"));
    admin_pages(&s, &tab);
    logout(&tab);
    open(&tab, &format!("{}/usage", s.base));
    assert!(tab.get_url().ends_with("/login"), "logged out");

    tenant_pages(&s, &tab);
    logout(&tab);
    provider_pages(&s, &tab);
    logout(&tab);
    phone_width(&s, &tab);

    // A revoked token's session ends at its next page.
    login(&tab, &s.base, &s.bob);
    assert_eq!(text(&tab, "#viewer"), "bob · tenant");
    let revoked = suanli(
        &["--config", &s.cluster.config, "token", "revoke", "bob"],
        &[],
    );
    assert!(revoked.status.success(), "{revoked:?}");
    open(&tab, &format!("{}/jobs", s.base));
    assert!(
        tab.get_url().ends_with("/login"),
        "revoked: {}",
        tab.get_url()
    );
}

fn admin_pages(s: &Setup, tab: &Tab) {
    let admin_token = s.cluster.admin_token();
    login(tab, &s.base, &admin_token);
    assert_eq!(text(tab, "#viewer"), "admin · admin");
    let nodes = s.admin(&["nodes", "--json"]);
    let nodes = nodes.as_array().unwrap();
    assert_eq!(text(tab, "#nodes"), nodes.len().to_string());
    let shown = rows(tab, "table#nodes");
    assert_eq!(shown.len(), nodes.len());
    for (p, c) in shown.iter().zip(nodes) {
        assert_eq!(p["name"], c["name"]);
        assert_eq!(p["gpu_class"], c["gpu_class"]);
        for field in ["running", "allowed_slots", "jobs_run"] {
            assert_eq!(p[field].as_str().unwrap(), c[field].to_string(), "{field}");
        }
    }
    // The utilisation plot has samples (one a second here).
    suanli_e2e::http::wait_for("utilisation samples", || {
        open(tab, &s.base);
        eval(
            tab,
            "JSON.stringify(document.querySelectorAll('polyline').length)",
        ) == 1
    });
    screenshot(tab, "overview-admin");

    open(tab, &format!("{}/usage?by=tenant&days=2", s.base));
    let cli = s.admin(&["usage", "--group-by", "tenant", "--format", "json"]);
    assert_usage_matches(tab, &cli, "tenant");
    let bars = eval(
        tab,
        "JSON.stringify(document.querySelectorAll('figure.chart rect').length)",
    );
    assert!(bars.as_u64().unwrap() >= 2, "a bar per tenant: {bars}");
    screenshot(tab, "usage-admin");

    open(tab, &format!("{}/jobs", s.base));
    let jobs = rows(tab, "#jobs");
    assert_eq!(jobs.len(), 3);
    screenshot(tab, "jobs-admin");
    open(tab, &format!("{}/jobs/{}", s.base, s.alice_jobs[0]));
    let view = s.admin(&["status", &s.alice_jobs[0].to_string(), "--json"]);
    let attempts = rows(tab, "#attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        integer(attempts[0]["gpu"].as_str().unwrap()),
        view["attempts"][0]["gpu_ns"].as_u64().unwrap()
    );
    assert_eq!(text(tab, "#state"), "succeeded");
    screenshot(tab, "job-admin");
    // The log as `suanli logs` prints it.
    open(tab, &format!("{}/jobs/{}", s.base, s.alice_jobs[1]));
    let logs = suanli(
        &[
            "--config",
            &s.cluster.config,
            "logs",
            &s.alice_jobs[1].to_string(),
        ],
        &[],
    );
    assert!(logs.status.success(), "{logs:?}");
    let cli_log = String::from_utf8(logs.stdout).unwrap();
    assert_eq!(cli_log.lines().count(), 3, "{cli_log:?}");
    assert_eq!(text(tab, "#log"), cli_log.trim());
    screenshot(tab, "job-log-admin");

    open(tab, &format!("{}/earnings", s.base));
    let cli = s.admin(&["usage", "--group-by", "node", "--format", "json"]);
    assert_usage_matches(tab, &cli, "node");
}

fn tenant_pages(s: &Setup, tab: &Tab) {
    login(tab, &s.base, &s.bob);
    assert_eq!(text(tab, "#viewer"), "bob · tenant");
    open(tab, &format!("{}/jobs", s.base));
    screenshot(tab, "jobs-tenant");
    let jobs = rows(tab, "#jobs");
    assert_eq!(jobs.len(), 1, "bob sees only his job: {jobs:?}");
    assert_eq!(jobs[0]["id"].as_str().unwrap(), s.bob_job.to_string());
    assert!(
        jobs[0].get("tenant").is_none(),
        "no tenant column for a tenant"
    );
    // Alice's job is "not found" for bob, as on the CLI.
    open(tab, &format!("{}/jobs/{}", s.base, s.alice_jobs[1]));
    assert!(text(tab, "p.error").contains("not found"));
    open(tab, &format!("{}/usage?by=tenant", s.base));
    let cli = s.cli(
        &s.bob,
        &["usage", "--group-by", "tenant", "--format", "json"],
    );
    assert_usage_matches(tab, &cli, "tenant");
    assert_eq!(rows(tab, "#usage").len(), 2, "bob's row and the total only");
    // The plots (read beside the request handler) name only bob as well.
    for by in ["tenant", "node", "class"] {
        open(tab, &format!("{}/usage?by={by}&days=2", s.base));
        let named = eval(
            tab,
            "JSON.stringify([...document.querySelectorAll('.legend li, rect > title')].map(e => e.textContent))",
        );
        let named: Vec<String> = serde_json::from_value(named).unwrap();
        assert!(!named.is_empty(), "{by}: bob has usage to plot");
        assert!(
            named.iter().all(|n| !n.contains("alice")),
            "{by}: bob's plots name alice: {named:?}"
        );
        if by == "tenant" {
            assert!(named.iter().all(|n| n.starts_with("bob")), "{named:?}");
        }
    }
    assert!(integer(&text(tab, "#total-cost")) > 0);
    open(tab, &format!("{}/usage", s.base));
    let cli = s.cli(
        &s.bob,
        &["usage", "--group-by", "class", "--format", "json"],
    );
    assert_usage_matches(tab, &cli, "class");
    screenshot(tab, "usage-tenant");
    open(tab, &format!("{}/earnings", s.base));
    assert!(text(tab, "p.error").contains("providers"));
    open(tab, &s.base);
}

fn provider_pages(s: &Setup, tab: &Tab) {
    login(tab, &s.base, s.cluster.node_token(0));
    assert_eq!(text(tab, "#viewer"), "node-0 · node");
    assert_eq!(rows(tab, "table#nodes").len(), 1);
    open(tab, &format!("{}/earnings", s.base));
    let cli = s.cli(
        s.cluster.node_token(0),
        &["usage", "--group-by", "node", "--format", "json"],
    );
    assert_usage_matches(tab, &cli, "node");
    screenshot(tab, "earnings-provider");
    open(tab, &format!("{}/jobs", s.base));
    assert!(text(tab, "p.error").contains("node token"));
    open(tab, &s.base);
}

/// At a phone's width nothing overflows the page sideways (wide tables
/// scroll inside their box).
fn phone_width(s: &Setup, tab: &Tab) {
    login(tab, &s.base, &s.alice);
    tab.set_bounds(Bounds::Normal {
        left: None,
        top: None,
        width: Some(390.0),
        height: Some(844.0),
    })
    .unwrap();
    for page in ["/", "/jobs", "/usage"] {
        open(tab, &format!("{}{page}", s.base));
        let fits = eval(
            tab,
            "JSON.stringify([document.documentElement.scrollWidth, window.innerWidth])",
        );
        let (scroll, width) = (fits[0].as_u64().unwrap(), fits[1].as_u64().unwrap());
        assert!(width <= 400, "the window is phone-sized: {width}");
        assert!(scroll <= width, "{page} overflows at {width}px: {scroll}");
    }
    screenshot(tab, "usage-phone");
    tab.set_bounds(Bounds::Normal {
        left: None,
        top: None,
        width: Some(1280.0),
        height: Some(900.0),
    })
    .unwrap();
    logout(tab);
}

#[test]
fn pages_refuse_without_a_session_and_set_strict_headers() {
    let cluster = ProcCluster::start_ext(0, 1, NodeExtras::default(), &["--http", "127.0.0.1:0"]);
    let addr = cluster.http_addr();
    for path in ["/", "/jobs", "/jobs/1", "/usage", "/earnings"] {
        let (status, head, _) = request(&addr, &format!("GET {path} HTTP/1.0\r\n\r\n"));
        assert_eq!(status, 303, "{path}: {head}");
        assert!(head.contains("location: /login"), "{path}: {head}");
    }
    let forged = "GET / HTTP/1.0\r\nCookie: suanli_session=00112233\r\n\r\n";
    assert_eq!(request(&addr, forged).0, 303, "an unknown session id");
    let (status, head, body) = request(&addr, "GET /login HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200);
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(head.contains("x-frame-options: DENY"), "{head}");
    assert!(!body.contains("<script"), "no script at all");
    // A login sets an HttpOnly, SameSite=Strict cookie, never the token.
    let token = cluster.admin_token();
    let form = format!("token={token}");
    let (status, head, _) = request(
        &addr,
        &format!(
            "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(&token));
    // A login form posted from another site's page (CSRF) is refused.
    let (status, _, _) = request(
        &addr,
        &format!(
            "POST /login HTTP/1.0\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 403);
    let (status, _, _) = request(
        &addr,
        "POST /logout HTTP/1.0\r\nSec-Fetch-Site: cross-site\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 403);
}
