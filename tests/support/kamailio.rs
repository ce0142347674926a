//! Test support: a throw-away Kamailio 5.6 SIP-over-WebSocket proxy/registrar
//! on a loopback port, configured from `kamailio.cfg.in` (next to this file).
//!
//! Std only. Kamailio runs in its own process group; `stop`/`Drop` SIGKILL
//! the whole group (killing only the main process would leave its children
//! listening on the port). Every test must call [`require_loopback_only_netns`]
//! first; run the tests inside `unshare -n bash -c 'ip link set lo up; cargo test ...'`.
//!
//! Needs the Debian packages `kamailio` and `kamailio-websocket-modules` (5.6).
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const KAMAILIO_BIN: &str = "/usr/sbin/kamailio";
const CFG_TEMPLATE: &str = include_str!("kamailio.cfg.in");
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGKILL: i32 = 9;
const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

/// Domain and user table of the test proxy.
#[derive(Clone, Debug)]
pub struct KamailioConfig {
    /// SIP domain (also the digest realm), e.g. `"example.com"`.
    pub domain: String,
    /// `(user, password)`; user names: ASCII letters, digits, `.`, `_`, `-`, `+`.
    pub users: Vec<(String, String)>,
    /// Also serve `wss://` (Kamailio's tls module) with this certificate.
    pub tls: Option<TlsFiles>,
    /// Also dispatch calls to a pool user over several members (the
    /// dispatcher module); `None` leaves the dispatcher out entirely.
    pub pool: Option<Pool>,
}

/// A pool user whose INVITEs Kamailio's dispatcher spreads over the
/// members round robin, trying the next member when one is not registered,
/// cannot be reached or fails (route POOL in `kamailio.cfg.in`).
#[derive(Clone, Debug)]
pub struct Pool {
    /// The user callers dial, e.g. `"pool"` (not a registered user).
    pub user: String,
    /// The members' user names (registered users of the domain).
    pub members: Vec<String>,
}

/// PEM-encoded certificate and private key for Kamailio's `wss://` listener.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A running (or stopped) Kamailio instance. Killed and cleaned up on drop.
pub struct Kamailio {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    cfg_path: PathBuf,
    log_path: PathBuf,
    tls_port: Option<u16>,
}

impl Kamailio {
    /// Picks a free loopback port, writes the cfg into a fresh temp dir,
    /// starts Kamailio and waits until it serves HTTP on the port.
    /// Panics with the Kamailio log if it does not come up.
    pub fn start(cfg: &KamailioConfig) -> Kamailio {
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = unused_port();
            let mut k = Kamailio::prepare(cfg, port);
            match k.spawn_and_wait() {
                Ok(()) => return k,
                Err(log) => {
                    // Someone grabbed the port between our check and
                    // Kamailio's bind: try another port. Anything else is fatal.
                    if !log.contains("Address already in use") {
                        drop(k);
                        panic!("Kamailio did not start on port {port}:\n{log}");
                    }
                    last_log = log;
                }
            }
        }
        panic!("Kamailio did not start (port always in use):\n{last_log}");
    }

    /// Like [`Kamailio::start`], on the given loopback port.
    pub fn start_on_port(cfg: &KamailioConfig, port: u16) -> Kamailio {
        let mut k = Kamailio::prepare(cfg, port);
        if let Err(log) = k.spawn_and_wait() {
            drop(k);
            panic!("Kamailio did not start on port {port}:\n{log}");
        }
        k
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ws://127.0.0.1:PORT`
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// `wss://127.0.0.1:TLS_PORT`, when started with [`KamailioConfig::tls`].
    pub fn wss_url(&self) -> String {
        let port = self.tls_port.expect("Kamailio was started without TLS");
        format!("wss://127.0.0.1:{port}")
    }

    /// Whether the Kamailio process is running (not stopped, not crashed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills Kamailio (SIGKILL to its whole process group: clients see their
    /// TCP connections closed with a FIN, no WebSocket close frame) and waits
    /// until the port refuses connections. No-op when already stopped.
    pub fn stop(&mut self) {
        self.kill_and_reap();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while port_accepts(self.port) {
            if Instant::now() > deadline {
                panic!(
                    "port {} still accepts connections {STOP_TIMEOUT:?} after killing Kamailio:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        self.append_marker("stopped");
    }

    /// Starts Kamailio again on the same port with the same cfg (stops it
    /// first if it is running). Registrations are lost: usrloc is in memory.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.append_marker("restart");
        if let Err(log) = self.spawn_and_wait() {
            panic!("Kamailio did not restart on port {}:\n{log}", self.port);
        }
    }

    /// Everything Kamailio wrote to stdout/stderr so far (all runs).
    pub fn log(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// Polls the log until it contains `needle`; returns false on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Freezes every Kamailio process (SIGSTOP): connections stay open but
    /// nothing is answered, like a server that hangs or a path that died.
    pub fn pause(&mut self) {
        self.signal_group(SIGSTOP);
    }

    /// Resumes a paused Kamailio (SIGCONT).
    pub fn resume(&mut self) {
        self.signal_group(SIGCONT);
    }

    fn signal_group(&mut self, sig: i32) {
        let child = self.child.as_ref().expect("Kamailio is not running");
        let pgid = child.id() as i32;
        // SAFETY: kill(2) with a process group id we created; no memory is shared.
        let rc = unsafe { kill(-pgid, sig) };
        assert_eq!(rc, 0, "kill(-{pgid}, {sig}) failed");
    }

    /// Calls a Kamailio RPC command over JSON-RPC (HTTP POST /RPC) and
    /// returns the raw JSON answer, e.g. `rpc("ul.lookup", &["location", "alice@example.com"])`.
    pub fn rpc(&self, method: &str, params: &[&str]) -> String {
        let params = params.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(",");
        let body = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"{method}\",\"params\":[{params}],\"id\":1}}");
        let mut stream = TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
            .unwrap_or_else(|e| panic!("RPC connect to Kamailio failed: {e}"));
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("set timeout");
        let request = format!(
            "POST /RPC HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("RPC write");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        match answer.split_once("\r\n\r\n") {
            Some((_, json)) => json.to_string(),
            None => panic!("RPC {method}: no HTTP body in {answer:?}"),
        }
    }

    /// The temp dir holding kamailio.cfg and kamailio.log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn prepare(cfg: &KamailioConfig, port: u16) -> Kamailio {
        if !Path::new(KAMAILIO_BIN).exists() {
            panic!("{KAMAILIO_BIN} not found: apt-get install kamailio kamailio-websocket-modules");
        }
        let dir = make_temp_dir();
        let cfg_path = dir.join("kamailio.cfg");
        let log_path = dir.join("kamailio.log");
        let tls_port = cfg.tls.as_ref().map(|files| {
            let write = |name: &str, text: &str| {
                let path = dir.join(name);
                fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
                path.display().to_string()
            };
            let cert = write("cert.pem", &files.cert_pem);
            let key = write("key.pem", &files.key_pem);
            write(
                "tls.cfg",
                &format!(
                    "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
                     private_key = {key}\ncertificate = {cert}\n"
                ),
            );
            unused_port()
        });
        let tls_block = match tls_port {
            Some(p) => format!(
                "enable_tls=yes\nlisten=tls:127.0.0.1:{p}\nloadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"{}\")",
                dir.join("tls.cfg").display()
            ),
            None => String::new(),
        };
        let (pool_define, pool_user, pool_list) = match &cfg.pool {
            Some(pool) => {
                let list = dir.join("dispatcher.list");
                let lines: String = pool.members.iter().map(|m| format!("1 sip:{m}@{} 16\n", cfg.domain)).collect();
                fs::write(&list, lines).unwrap_or_else(|e| panic!("writing {}: {e}", list.display()));
                ("#!define WITH_POOL".to_string(), pool.user.clone(), list.display().to_string())
            }
            None => (String::new(), String::new(), String::new()),
        };
        let text = render_cfg(cfg, port)
            .replace("@TLS@", &tls_block)
            .replace("@POOL@", &pool_define)
            .replace("@POOL_USER@", &pool_user)
            .replace("@POOL_LIST@", &pool_list);
        fs::write(&cfg_path, text).unwrap_or_else(|e| panic!("writing {}: {e}", cfg_path.display()));
        File::create(&log_path).unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
        Kamailio { child: None, port, dir, cfg_path, log_path, tls_port }
    }

    /// Spawns Kamailio and waits until it answers an HTTP request on the
    /// port. On failure kills it and returns the log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.log_path.display()));
        let log2 = log.try_clone().expect("dup log fd");
        let d = self.dir.to_str().expect("temp dir path is not UTF-8");
        let child = Command::new(KAMAILIO_BIN)
            .arg("-f")
            .arg(&self.cfg_path)
            .args(["-DD", "-E", "-m", "32", "-M", "8", "-Y", d, "-w", d, "-P"])
            .arg(self.dir.join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {KAMAILIO_BIN}: {e}"));
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                self.kill_and_reap();
                return Err(format!("kamailio exited with {status}\n{}", self.log()));
            }
            if http_probe(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill_and_reap();
                return Err(format!(
                    "kamailio not serving on port {} after {START_TIMEOUT:?}\n{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn kill_and_reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Kamailio's process group (process_group(0) at spawn): main
            // process and all the children it forked.
            kill_process_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn append_marker(&self, what: &str) {
        if let Ok(mut f) = OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(f, "==== test support: kamailio {what} (port {}) ====", self.port);
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.kill_and_reap();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("---- kamailio log (last {} lines) of {} ----", tail.len(), self.log_path.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            eprintln!("---- end of kamailio log ----");
        }
        if std::env::var_os("KAMAILIO_KEEP_DIR").is_some() {
            eprintln!("keeping {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// SIGKILLs every process of the group `pgid` (a child spawned with
/// `process_group(0)`: its id is the group's), e.g. a process and all it forked.
pub fn kill_process_group(pgid: u32) {
    // SAFETY: kill(2) with a process group id the caller created; no memory is shared.
    unsafe {
        kill(-(pgid as i32), SIGKILL);
    }
}

/// Panics unless this process runs in a network namespace whose only
/// interface is `lo`, and loopback works. (Reads /proc/self/net/dev, which
/// follows the caller's network namespace; /sys/class/net does not after a
/// plain `unshare -n`.)
pub fn require_loopback_only_netns() {
    let dev =
        fs::read_to_string("/proc/self/net/dev").unwrap_or_else(|e| panic!("cannot read /proc/self/net/dev: {e}"));
    let ifaces: Vec<&str> =
        dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).filter(|s| !s.is_empty()).collect();
    if ifaces != ["lo"] {
        panic!(
            "refusing to run: this test must run in a network namespace with only `lo`, \
             but the interfaces are {ifaces:?}. Run e.g.\n  \
             unshare -n bash -c 'ip link set lo up; cargo test ...'"
        );
    }
    let ok = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| {
            let addr = l.local_addr()?;
            TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            Ok(l)
        })
        .is_ok();
    if !ok {
        panic!("loopback does not work in this network namespace: run `ip link set lo up` first");
    }
}

/// A loopback TCP port nothing listens on. Successive calls in one process
/// return different ports. Ports come from 20000..32000, below Linux's
/// ephemeral range, so client sockets do not grab them.
pub fn unused_port() -> u16 {
    const BASE: u32 = 20000;
    const RANGE: u32 = 12000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static SEED: OnceLock<u32> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        std::process::id().wrapping_mul(7919).wrapping_add(nanos)
    });
    for _ in 0..RANGE {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (BASE + seed.wrapping_add(n) % RANGE) as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() && !port_accepts(port) {
            return port;
        }
    }
    panic!("no unused loopback port in {BASE}..{}", BASE + RANGE);
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

fn port_accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&loopback(port), Duration::from_millis(500)).is_ok()
}

/// True once Kamailio accepts a connection and its script answers a plain
/// HTTP request (the cfg replies 404 to anything but a WS upgrade).
fn http_probe(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&loopback(port), Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /ready HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 4096 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got.starts_with(b"HTTP/1.")
}

fn make_temp_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    loop {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "webphone-kamailio-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("creating {}: {e}", dir.display()),
        }
    }
}

fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

fn render_cfg(cfg: &KamailioConfig, port: u16) -> String {
    let domain_ok =
        !cfg.domain.is_empty() && cfg.domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    assert!(domain_ok, "unsupported SIP domain for the test cfg: {:?}", cfg.domain);
    let user_ok =
        |user: &str| !user.is_empty() && user.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
    let pool_users = cfg.pool.iter().flat_map(|p| std::iter::once(&p.user).chain(&p.members));
    for user in pool_users {
        assert!(user_ok(user), "unsupported pool user name for the test cfg: {user:?}");
    }
    let mut users = String::new();
    for (user, password) in &cfg.users {
        assert!(user_ok(user), "unsupported user name for the test cfg: {user:?}");
        assert!(
            !password.chars().any(|c| c.is_control()),
            "control characters in password of {user:?} are not supported"
        );
        let escaped = password.replace('\\', "\\\\").replace('"', "\\\"");
        users.push_str(&format!("\t$sht(users=>{user}) = \"{escaped}\";\n"));
    }
    CFG_TEMPLATE
        .replace("@LISTEN_PORT@", &port.to_string())
        .replace("@DOMAIN@", &cfg.domain)
        .replace("@USERS@", users.trim_end())
}
