//! [`PhoneConfig`] and its builder: servers, account, registration,
//! reconnection, keep-alive and TLS settings.

use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::dialog::CallSettings;
use crate::error::PermanentFailurePolicy;
use crate::event::CallInfo;
use crate::media::receive::impairment::Impairment;
use crate::media::receive::quality::QualityThresholds;
use crate::media::{AudioSetup, FrameDuration, IceServer, MediaConfig};
use crate::secret::Password;
use crate::transport::keepalive::{KeepAliveConfig, PingKind};
use crate::transport::tls::TlsConfig;
use crate::transport::ws::ServerUrl;

/// Everything a [`crate::Phone`] needs. Build it with [`PhoneConfig::builder`].
/// `Debug` never shows the password.
#[derive(Clone, Debug)]
pub struct PhoneConfig {
    pub(crate) servers: Vec<ServerUrl>,
    pub(crate) user: String,
    pub(crate) auth_user: Option<String>,
    pub(crate) password: Password,
    pub(crate) domain: String,
    pub(crate) display_name: Option<String>,
    pub(crate) register_on_start: bool,
    pub(crate) register_expires: u32,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) on_permanent_failure: PermanentFailurePolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) keepalive: KeepAliveConfig,
    pub(crate) tls: TlsConfig,
    pub(crate) user_agent: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) unregister_timeout: Duration,
    pub(crate) seed: Option<u64>,
    pub(crate) calls: CallSettings,
    pub(crate) media: MediaConfig,
    pub(crate) incoming_audio: Option<AudioChooser>,
    pub(crate) transfer_audio: Option<AudioChooser>,
    pub(crate) event_queue_capacity: usize,
    #[cfg(feature = "history")]
    pub(crate) history: Option<std::path::PathBuf>,
}

/// Chooses the audio of a call the application did not place or answer
/// itself (one ringing here, one placed on a transfer request).
#[derive(Clone)]
pub(crate) struct AudioChooser(pub(crate) Arc<dyn Fn(&CallInfo) -> AudioSetup + Send + Sync>);

impl std::fmt::Debug for AudioChooser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AudioChooser(..)")
    }
}

impl PhoneConfig {
    /// A builder with JsSIP-like defaults.
    pub fn builder() -> PhoneConfigBuilder {
        PhoneConfigBuilder::default()
    }

    /// The servers, in order of preference.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(ServerUrl::as_str)
    }

    /// The account's user part.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The SIP domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// Builds a [`PhoneConfig`].
#[derive(Clone, Debug)]
pub struct PhoneConfigBuilder {
    servers: Vec<String>,
    user: Option<String>,
    auth_user: Option<String>,
    password: Option<Password>,
    domain: Option<String>,
    display_name: Option<String>,
    register_on_start: bool,
    register_expires: u32,
    reconnect_min: Duration,
    reconnect_max: Duration,
    on_permanent_failure: PermanentFailurePolicy,
    connect_timeout: Duration,
    keepalive: KeepAliveConfig,
    tls: TlsConfig,
    user_agent: String,
    instance_id: Option<String>,
    unregister_timeout: Duration,
    seed: Option<u64>,
    calls: CallSettings,
    media: MediaConfig,
    incoming_audio: Option<AudioChooser>,
    transfer_audio: Option<AudioChooser>,
    event_queue_capacity: usize,
    #[cfg(feature = "history")]
    history: Option<std::path::PathBuf>,
}

impl Default for PhoneConfigBuilder {
    fn default() -> Self {
        PhoneConfigBuilder {
            servers: Vec::new(),
            user: None,
            auth_user: None,
            password: None,
            domain: None,
            display_name: None,
            register_on_start: true,
            register_expires: 600,
            reconnect_min: Duration::from_secs(2),
            reconnect_max: Duration::from_secs(30),
            on_permanent_failure: PermanentFailurePolicy::Stop,
            connect_timeout: Duration::from_secs(10),
            keepalive: KeepAliveConfig::default(),
            tls: TlsConfig::default(),
            user_agent: concat!("webphone/", env!("CARGO_PKG_VERSION")).to_string(),
            instance_id: None,
            unregister_timeout: Duration::from_secs(3),
            seed: None,
            calls: CallSettings::default(),
            media: MediaConfig::default(),
            incoming_audio: None,
            transfer_audio: None,
            event_queue_capacity: 1024,
            #[cfg(feature = "history")]
            history: None,
        }
    }
}

impl PhoneConfigBuilder {
    /// Adds a `ws://` or `wss://` server; call again for failover servers,
    /// most preferred first.
    pub fn server(mut self, url: impl Into<String>) -> Self {
        self.servers.push(url.into());
        self
    }

    /// The account's user part (`1001` in `sip:1001@example.com`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// A digest user name that differs from the user part.
    pub fn auth_user(mut self, user: impl Into<String>) -> Self {
        self.auth_user = Some(user.into());
        self
    }

    /// The account's password.
    pub fn password(mut self, password: impl Into<Password>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The SIP domain (and digest realm, usually).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Display name in From headers.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Register when started (default true).
    pub fn register_on_start(mut self, yes: bool) -> Self {
        self.register_on_start = yes;
        self
    }

    /// Requested registration expiry in seconds (default 600).
    pub fn register_expires(mut self, secs: u32) -> Self {
        self.register_expires = secs;
        self
    }

    /// Reconnection backoff bounds (default 2 s to 30 s).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max;
        self
    }

    /// What to do after a failure that retrying will not heal (a
    /// certificate that fails verification, a refused `sip` subprotocol, a
    /// 403 or refused credentials; see [`crate::FailureKind::is_permanent`]).
    /// Default: [`PermanentFailurePolicy::Stop`], report it and stop trying.
    pub fn on_permanent_failure(mut self, policy: PermanentFailurePolicy) -> Self {
        self.on_permanent_failure = policy;
        self
    }

    /// How long a WebSocket handshake may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Keep-alive: ping after `interval` of silence, give up `timeout` later.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration, kind: PingKind) -> Self {
        self.keepalive = KeepAliveConfig { interval, timeout, kind };
        self
    }

    /// TLS settings for `wss://` servers.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// The User-Agent header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// The `+sip.instance` UUID (RFC 5626); random when not given.
    pub fn instance_id(mut self, uuid: impl Into<String>) -> Self {
        self.instance_id = Some(uuid.into());
        self
    }

    /// How long `stop` waits for the unregistration answer (default 3 s).
    pub fn unregister_timeout(mut self, timeout: Duration) -> Self {
        self.unregister_timeout = timeout;
        self
    }

    /// Seed the random tags, branches and Call-IDs (tests only: real
    /// phones must leave this unset).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How many calls may exist at once (default 2 lines); more incoming
    /// calls get 486 Busy Here.
    pub fn max_calls(mut self, lines: usize) -> Self {
        self.calls.max_calls = lines.max(1);
        self
    }

    /// Whether placing, answering or resuming a call first holds every
    /// other confirmed call (default: yes, as a softphone's lines do; a bot
    /// talking to many callers at once turns it off).
    pub fn hold_other_lines(mut self, hold: bool) -> Self {
        self.calls.hold_other_lines = hold;
        self
    }

    /// Answer incoming calls by themselves after `delay` (Aliyun's `autoAnswerCall`).
    /// Their audio is chosen by [`incoming_audio`](Self::incoming_audio), else silence.
    pub fn auto_answer(mut self, delay: Option<Duration>) -> Self {
        self.calls.auto_answer = delay;
        self
    }

    /// Chooses each incoming call's audio when it rings, from who is calling
    /// (a voice bot that auto-answers plays its prompt this way). Answering
    /// with [`crate::Phone::answer_with`] still overrides it.
    pub fn incoming_audio(mut self, choose: impl Fn(&CallInfo) -> AudioSetup + Send + Sync + 'static) -> Self {
        self.incoming_audio = Some(AudioChooser(Arc::new(choose)));
        self
    }

    /// What to do when a peer asks this phone to transfer a call (REFER):
    /// accept (the default), reject, or ask the application
    /// ([`crate::Event::TransferRequested`], then
    /// [`crate::Phone::accept_transfer`] / [`crate::Phone::reject_transfer`]).
    pub fn transfer_policy(mut self, policy: crate::TransferPolicy) -> Self {
        self.calls.transfer_policy = policy;
        self
    }

    /// Whether a call ends by itself once its blind transfer succeeded
    /// (default: yes). An attended transfer always ends both calls.
    pub fn end_after_transfer(mut self, end: bool) -> Self {
        self.calls.end_after_transfer = end;
        self
    }

    /// How long a transfer of ours waits for the transferee's final NOTIFY
    /// (each NOTIFY starts it again) before it is reported failed (default 60 s).
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.calls.transfer_timeout = timeout;
        self
    }

    /// Chooses the audio of the calls a transfer gives this phone: the call
    /// it places because a peer asked it to transfer (`transferred_from` in
    /// the [`CallInfo`] names the call the REFER came in), and the call that
    /// takes the place of one of ours in an attended transfer
    /// ([`crate::Event::CallReplaced`]). Without it such calls send silence;
    /// a softphone passes its devices, a bot the same choice as for its
    /// other calls.
    pub fn transfer_audio(mut self, choose: impl Fn(&CallInfo) -> AudioSetup + Send + Sync + 'static) -> Self {
        self.transfer_audio = Some(AudioChooser(Arc::new(choose)));
        self
    }

    /// RFC 4028 session interval asked for on outgoing calls (default 1800 s;
    /// `None` asks for none). Peers' session timers are honoured either way.
    pub fn session_expires(mut self, secs: Option<u32>) -> Self {
        self.calls.session_expires = secs;
        self
    }

    /// STUN / TURN servers for ICE (none by default: host candidates only).
    pub fn ice_servers(mut self, servers: Vec<IceServer>) -> Self {
        self.media.peer.ice.servers = servers;
        self
    }

    /// Use loopback addresses for media, like Chromium's
    /// `--allow-loopback-in-peer-connection` (tests and the demo need it).
    pub fn allow_loopback(mut self, allow: bool) -> Self {
        self.media.peer.ice.allow_loopback = allow;
        self
    }

    /// Bind media to these local addresses only (an interface filter).
    /// Empty (the default) binds the address of the default route.
    pub fn media_interfaces(mut self, addrs: Vec<std::net::IpAddr>) -> Self {
        self.media.peer.ice.interfaces = addrs;
        self
    }

    /// The longest wait for ICE candidates before an offer or answer goes
    /// out (default 2 s; setups never wait 10-40 s for gathering).
    pub fn ice_gather_timeout(mut self, timeout: Duration) -> Self {
        self.media.peer.ice.gather_timeout = timeout;
        self
    }

    /// ICE connectivity check interval while connecting (default 10 ms: a
    /// loopback call connects in about 22 ms, 69 ms at 50 ms; once connected
    /// the agent only sends keep-alives, so a shorter interval costs nothing
    /// during the call).
    pub fn ice_check_interval(mut self, interval: Duration) -> Self {
        self.media.peer.ice.check_interval = interval;
        self
    }

    /// Audio frame duration (20 ms default, or 10 ms).
    pub fn frame_duration(mut self, frame: FrameDuration) -> Self {
        self.media.frame = frame;
        self
    }

    /// How long after its arrival a received packet is played on a clean
    /// network (default 1 ms; capped at half a frame). Larger values trade
    /// delay for resilience to scheduling hiccups on a loaded machine (a
    /// packet that misses its tick gets a grace of a quarter frame first).
    pub fn playout_margin(mut self, margin: Duration) -> Self {
        self.media.playout_margin = margin;
        self
    }

    /// The jitter buffer's delay bounds: lowest and highest target delay and
    /// the delay before the first frame plays (defaults: one frame, 400 ms,
    /// 40 ms). The target adapts between the bounds to the measured jitter.
    pub fn jitter_buffer(mut self, min: Duration, max: Duration, initial: Duration) -> Self {
        self.media.jitter_min = min;
        self.media.jitter_max = max;
        self.media.jitter_initial = initial;
        self
    }

    /// When [`crate::Event::CallQuality`] alerts are raised.
    pub fn quality_thresholds(mut self, thresholds: QualityThresholds) -> Self {
        self.media.quality = thresholds;
        self
    }

    /// Drops and delays received packets before the jitter buffer, as a bad
    /// network would (seeded, reproducible). For call tests and trying the
    /// jitter buffer; never set it in production.
    pub fn receive_impairment(mut self, impairment: Option<Impairment>) -> Self {
        self.media.impairment = impairment;
        self
    }

    /// How many events each subscriber's queue holds before it starts
    /// dropping them, each gap reported by an [`crate::Event::Lagged`]
    /// (default 1024; see [`crate::Phone::events`]).
    pub fn event_queue_capacity(mut self, events: usize) -> Self {
        self.event_queue_capacity = events.max(2);
        self
    }

    /// Keeps a history of every call in the SQLite database at `path`
    /// (created if need be; see [`crate::history`]), read with
    /// [`crate::Phone::history`]. Off by default.
    #[cfg(feature = "history")]
    pub fn history(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.history = Some(path.into());
        self
    }

    /// Checks and builds the configuration.
    pub fn build(self) -> Result<PhoneConfig, Error> {
        if self.servers.is_empty() {
            return Err(Error::Config("at least one server is required".into()));
        }
        let servers = self.servers.iter().map(|s| ServerUrl::parse(s)).collect::<Result<Vec<_>, _>>()?;
        let user = self.user.filter(|u| !u.is_empty()).ok_or_else(|| Error::Config("user is required".into()))?;
        let domain = self.domain.filter(|d| !d.is_empty()).ok_or_else(|| Error::Config("domain is required".into()))?;
        if crate::sip::Host::parse(&domain).is_err() {
            return Err(Error::Config(format!("domain {domain:?} is not a host name or address")));
        }
        if self.register_expires == 0 {
            return Err(Error::Config("register_expires must be positive".into()));
        }
        Ok(PhoneConfig {
            servers,
            user,
            auth_user: self.auth_user,
            password: self.password.unwrap_or_else(|| Password::new("")),
            domain,
            display_name: self.display_name,
            register_on_start: self.register_on_start,
            register_expires: self.register_expires,
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max,
            on_permanent_failure: self.on_permanent_failure,
            connect_timeout: self.connect_timeout,
            keepalive: self.keepalive,
            tls: self.tls,
            user_agent: self.user_agent,
            instance_id: self.instance_id,
            unregister_timeout: self.unregister_timeout,
            seed: self.seed,
            calls: self.calls,
            media: self.media,
            incoming_audio: self.incoming_audio,
            transfer_audio: self.transfer_audio,
            event_queue_capacity: self.event_queue_capacity,
            #[cfg(feature = "history")]
            history: self.history,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_validates() {
        let cfg = PhoneConfig::builder()
            .server("ws://127.0.0.1:5066")
            .server("wss://backup.example.com/ws")
            .user("1001")
            .password("hunter2-secret")
            .domain("example.com")
            .build()
            .expect("valid");
        assert_eq!(cfg.servers().count(), 2);
        assert!(!format!("{cfg:?}").contains("hunter2-secret"));
        assert!(matches!(PhoneConfig::builder().user("a").domain("b").build(), Err(Error::Config(_))));
        assert!(matches!(
            PhoneConfig::builder().server("http://x").user("a").domain("b").build(),
            Err(Error::InvalidServer { .. })
        ));
    }
}
