//! The RTCP interceptor: watches RTCP go by and records what the remote
//! reports about our stream (rtc 0.21 does not).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use rtc::interceptor::{Interceptor, Packet as InterceptedPacket, StreamInfo, TaggedPacket};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;

use crate::media::rtc::peer::lock;

/// The reception report blocks an RTCP packet carries (receiver and sender
/// reports; none for other packet types). Used by our RTCP monitor and by
/// the `rtp` fuzz target, so the fuzzer exercises the real code.
pub fn report_blocks(packet: &dyn rtc::rtcp::packet::Packet) -> &[ReceptionReport] {
    let any = packet.as_any();
    if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
        &rr.reports
    } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
        &sr.reports
    } else {
        &[]
    }
}

/// A report block's delay since the last sender report (DLSR, 1/65536 s units).
pub fn dlsr(block: &ReceptionReport) -> Duration {
    Duration::from_secs_f64(f64::from(block.delay) / 65536.0)
}

/// What the remote's RTCP reports about our stream.
#[derive(Default)]
pub(crate) struct RtcpReports {
    /// NTP middle 32 bits and local send instant of our recent SRs.
    pub(crate) sent_srs: VecDeque<(u32, Instant)>,
    /// The last report block about our SSRC (from an RR or an SR).
    pub(crate) last: Option<ReceptionReport>,
    /// Round-trip time from the last block that echoed one of our SRs.
    pub(crate) rtt: Option<Duration>,
}

/// An interceptor that watches RTCP go by and records the report blocks
/// about our SSRC, and the RTT they give (RFC 3550 §6.4.1: arrival − LSR −
/// DLSR). It changes nothing. rtc 0.21 never feeds received RTCP into its
/// statistics (`process_read_rtcp_for_stats` has no caller) and hard-codes
/// the RTCP RTT to 0, so this is the only source for them.
///
/// Placed below the sender-report generator (slot 11 000) so our outgoing
/// SRs pass it on their way to the wire, and anywhere on the read path.
pub(crate) struct RtcpMonitor {
    pub(crate) ssrc: u32,
    pub(crate) reports: Arc<StdMutex<RtcpReports>>,
    pub(crate) read: VecDeque<TaggedPacket>,
    pub(crate) write: VecDeque<TaggedPacket>,
}

/// The registry slot of [`RtcpMonitor`]: between RFC 8888 (9 000) and the
/// receiver reports (10 000).
pub(crate) const RTCP_MONITOR_SLOT: usize = 9_500;

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpMonitor {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let InterceptedPacket::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                for block in report_blocks(packet.as_ref()).iter().filter(|b| b.ssrc == self.ssrc) {
                    let mut r = lock(&self.reports);
                    if block.last_sender_report != 0
                        && let Some((_, sent)) = r.sent_srs.iter().find(|(lsr, _)| *lsr == block.last_sender_report)
                    {
                        r.rtt = msg.now.checked_duration_since(*sent).and_then(|d| d.checked_sub(dlsr(block)));
                    }
                    r.last = Some(block.clone());
                }
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let InterceptedPacket::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                if let Some(sr) = packet.as_any().downcast_ref::<SenderReport>()
                    && sr.ssrc == self.ssrc
                {
                    let mut r = lock(&self.reports);
                    if r.sent_srs.len() == 16 {
                        r.sent_srs.pop_front();
                    }
                    r.sent_srs.push_back(((sr.ntp_time >> 16) as u32, msg.now));
                }
            }
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for RtcpMonitor {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}
