//! Each event subscriber's queue ([`crate::Phone::events`]) and what
//! happens when a subscriber falls behind.
//!
//! The policy: a queue holds at most `capacity` events
//! ([`crate::PhoneConfigBuilder::event_queue_capacity`], 1024 by default).
//! While it is full, new events are not queued but counted; the first event
//! queued once there is room again (or the next read, if nothing else
//! comes) is an [`Event::Lagged`] carrying that count, in the place of the
//! events it stands for. So a subscriber that stops reading costs bounded
//! memory, and no event, call events included, is ever dropped without a
//! `Lagged` saying so: a subscriber that sees one re-reads what it needs
//! ([`crate::Phone::status`], [`crate::Action::Lines`]). [`Event::Stopped`]
//! is always queued, so every subscription ends with it.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::event::Event;
use crate::phone::lock;

/// One subscriber's bounded queue: the driver pushes, the subscriber reads.
#[derive(Debug)]
pub(crate) struct EventQueue {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Event>,
    /// Events not queued since the last `Lagged`.
    missed: u64,
    closed: bool,
}

impl EventQueue {
    /// An empty queue for at most `capacity` events (at least 2: one event
    /// and the `Lagged` before it).
    pub(crate) fn new(capacity: usize) -> EventQueue {
        EventQueue { state: Mutex::new(State::default()), ready: Notify::new(), capacity: capacity.max(2) }
    }

    /// Queues `event`, or counts it as missed when the queue is full.
    pub(crate) fn push(&self, event: Event) {
        let mut s = lock(&self.state);
        if s.closed {
            return;
        }
        let needed = 1 + usize::from(s.missed > 0);
        if s.events.len() + needed > self.capacity && !matches!(event, Event::Stopped) {
            s.missed += 1;
            return;
        }
        if s.missed > 0 {
            let missed = std::mem::take(&mut s.missed);
            s.events.push_back(Event::Lagged { missed });
        }
        s.events.push_back(event);
        drop(s);
        self.ready.notify_one();
    }

    /// No more events will come: the reader gets `None` once it has read
    /// what is queued.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.ready.notify_one();
    }

    /// The next event, waiting for one; `None` once closed and read out.
    pub(crate) async fn recv(&self) -> Option<Event> {
        loop {
            if let Some(event) = self.try_recv() {
                return Some(event);
            }
            if lock(&self.state).closed {
                return None;
            }
            // A push between the check above and this wait leaves a permit:
            // no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// The next event if one is waiting.
    pub(crate) fn try_recv(&self) -> Option<Event> {
        let mut s = lock(&self.state);
        if let Some(event) = s.events.pop_front() {
            return Some(event);
        }
        (s.missed > 0).then(|| Event::Lagged { missed: std::mem::take(&mut s.missed) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: i32) -> Event {
        Event::StatusChanged { state: crate::PhoneState::Idle, code, last: 0 }
    }

    fn drain(q: &EventQueue) -> Vec<Event> {
        std::iter::from_fn(|| q.try_recv()).collect()
    }

    #[test]
    fn a_full_queue_counts_what_it_drops_and_says_so_in_their_place() {
        let q = EventQueue::new(4);
        for code in 0..10 {
            q.push(status(code));
        }
        // Four queued, six missed: reported when read out.
        assert_eq!(drain(&q), [status(0), status(1), status(2), status(3), Event::Lagged { missed: 6 }]);
        for code in 10..16 {
            q.push(status(code));
        }
        assert_eq!(q.try_recv(), Some(status(10)));
        // No room yet for the count and an event.
        q.push(status(16));
        assert_eq!(q.try_recv(), Some(status(11)));
        // Room again: the count goes before the next event that is queued.
        q.push(status(17));
        assert_eq!(drain(&q), [status(12), status(13), Event::Lagged { missed: 3 }, status(17)]);
    }

    #[test]
    fn the_queue_never_holds_more_than_its_capacity_but_always_takes_stopped() {
        let q = EventQueue::new(8);
        for code in 0..100_000 {
            q.push(status(code));
            assert!(lock(&q.state).events.len() <= 8);
        }
        q.push(Event::Stopped);
        q.close();
        q.push(status(-1));
        let events = drain(&q);
        assert_eq!(events.len(), 10, "{events:?}");
        assert_eq!(events[8..], [Event::Lagged { missed: 99_992 }, Event::Stopped]);
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_and_sees_the_end() {
        let q = std::sync::Arc::new(EventQueue::new(16));
        let reader = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while let Some(event) = q.recv().await {
                    seen.push(event);
                }
                seen
            })
        };
        tokio::task::yield_now().await;
        q.push(status(1));
        q.push(Event::Stopped);
        q.close();
        assert_eq!(reader.await.expect("the reader ends"), [status(1), Event::Stopped]);
    }
}
