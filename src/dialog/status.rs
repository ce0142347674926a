//! The phone's state as one value, with the numbers the seed SDKs use
//! (Aliyun's status table), derived from registration and the calls; and
//! the modes that say which calls a phone takes (Bizfly's `setMode`).

use serde::{Deserialize, Serialize};

use super::UserAgent;
use super::call::{CallDirection, CallState};

/// Which calls the phone takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Calls in and out (the default).
    #[default]
    Active,
    /// Outgoing calls only: incoming ones get 486 Busy Here.
    Outgoing,
    /// Neither: incoming calls get 486, placing one is not allowed.
    Inactive,
}

/// What the phone is doing, as one value (Aliyun's status codes:
/// [`PhoneState::code`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PhoneState {
    /// Not registered (-1).
    #[default]
    Unregistered,
    /// Registering (0).
    Registering,
    /// Registered, no call (3).
    Idle,
    /// A call rings here (6).
    Ringing,
    /// Placing a call (8).
    Dialing,
    /// In a call we answered (9).
    InboundCall,
    /// In a call we placed (10).
    OutboundCall,
    /// Every call is held by us (12).
    Held,
    /// Placing a call while another is held: a consultation (16).
    ConsultationDialing,
    /// In a call we placed while another is held (17).
    ConsultationCall,
}

impl PhoneState {
    /// The seeds' number for the state (Aliyun `getStatusCode`).
    pub fn code(self) -> i32 {
        match self {
            PhoneState::Unregistered => -1,
            PhoneState::Registering => 0,
            PhoneState::Idle => 3,
            PhoneState::Ringing => 6,
            PhoneState::Dialing => 8,
            PhoneState::InboundCall => 9,
            PhoneState::OutboundCall => 10,
            PhoneState::Held => 12,
            PhoneState::ConsultationDialing => 16,
            PhoneState::ConsultationCall => 17,
        }
    }
}

impl UserAgent {
    /// Sets which calls the phone takes.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Which calls the phone takes.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// What the phone is doing: an unheld call first (the newest), then a
    /// call being placed, a call ringing here, held calls, registration.
    pub fn phone_state(&self) -> PhoneState {
        let live: Vec<_> = self.calls.values().filter(|c| !c.is_ended()).collect();
        let held = live.iter().any(|c| c.state() == CallState::Confirmed && c.held().0);
        let outgoing = |c: &&&super::call::Call| c.snapshot().direction == CallDirection::Outgoing;
        if let Some(c) = live.iter().rev().find(|c| c.state() == CallState::Confirmed && !c.held().0) {
            return match (outgoing(&c), held) {
                (true, true) => PhoneState::ConsultationCall,
                (true, false) => PhoneState::OutboundCall,
                (false, _) => PhoneState::InboundCall,
            };
        }
        if live.iter().any(|c| matches!(c.state(), CallState::Answering | CallState::WaitingAck)) {
            return PhoneState::InboundCall;
        }
        if live.iter().any(|c| outgoing(&c) && c.state() != CallState::Confirmed) {
            return if held { PhoneState::ConsultationDialing } else { PhoneState::Dialing };
        }
        if live.iter().any(|c| c.state() == CallState::Ringing) {
            return PhoneState::Ringing;
        }
        if held {
            return PhoneState::Held;
        }
        if self.is_registered() {
            PhoneState::Idle
        } else if self.registration.is_wanted() && self.connected {
            PhoneState::Registering
        } else {
            PhoneState::Unregistered
        }
    }
}
