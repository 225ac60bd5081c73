//! A thread for jobs of a few microseconds whose callers may wait for them in place.
//!
//! Handing a job to a sleeping thread, and being woken for its result, costs two thread wake-ups:
//! on a virtual machine tens of microseconds each, more than storing a 4 KiB object takes. So the
//! lane's thread stays awake for a moment after each job, and a caller issuing jobs one after
//! another finds it running; and a caller may wait a bounded time for the result on its own thread
//! ([`Ticket::wait_for`]) before asking to be called back ([`Ticket::on_done`]). The bound is what
//! keeps an event loop responsive when a device stalls.

use std::io;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// How long a caller waits in place for a quick job's result (spinning) before it asks to be
/// called back: the longest an event loop (or an async worker) is held up by a stalled device.
pub const QUICK_WAIT: Duration = Duration::from_micros(50);

/// How long the lane's thread stays awake after a job, looking for the next one.
const STAY_AWAKE: Duration = Duration::from_micros(100);

/// One thread, started on first use, ended by [`QuickLane::stop`] or when the lane is dropped.
#[derive(Debug, Default)]
pub struct QuickLane {
    state: Mutex<LaneState>,
}

#[derive(Debug, Default)]
enum LaneState {
    #[default]
    NotStarted,
    Running(Sender<Job>),
    Stopped,
}

impl QuickLane {
    /// Runs `job` on the lane's thread; the ticket gives its result. Where the lane is not open
    /// (see [`QuickLane::is_open`]) the job runs here and now.
    pub fn run<T: Send + 'static>(&self, job: impl FnOnce() -> Result<T> + Send + 'static) -> Ticket<Result<T>> {
        let shared = Arc::new(Shared { finished: AtomicBool::new(false), state: Mutex::new(State::Running) });
        let ticket = Ticket { shared: shared.clone() };
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(job))
                .unwrap_or_else(|_| Err(Error::io("a quick-lane job", io::Error::other("it panicked"))));
            shared.finish(outcome);
        });
        if let Err(job) = self.send(job) {
            job();
        }
        ticket
    }

    /// Whether jobs go to the lane's thread: not once stopped, nor if no thread could be started.
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), LaneState::Stopped)
    }

    /// Lets the thread end once the jobs already handed to it are done.
    pub fn stop(&self) {
        *self.lock() = LaneState::Stopped;
    }

    /// Hands `job` to the thread, starting it first if need be; gives the job back if it cannot.
    fn send(&self, job: Job) -> std::result::Result<(), Job> {
        let mut state = self.lock();
        if let LaneState::NotStarted = *state {
            let (sender, receiver) = mpsc::channel();
            let spawned = std::thread::Builder::new().name("quick-lane".into()).spawn(move || serve(receiver));
            *state = if spawned.is_ok() { LaneState::Running(sender) } else { LaneState::Stopped };
        }
        match &*state {
            LaneState::Running(sender) => sender.send(job).map_err(|mpsc::SendError(job)| job),
            _ => Err(job),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn serve(jobs: Receiver<Job>) {
    while let Some(job) = next_job(&jobs) {
        // A job's own panic is its result already; this catches one in a callback, which must
        // not end the thread and strand the jobs queued behind it.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

/// The next job: looked for without sleeping for [`STAY_AWAKE`], then waited for.
fn next_job(jobs: &Receiver<Job>) -> Option<Job> {
    let idle_since = Instant::now();
    let mut spins = 0u32;
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if !spun_out(spins, idle_since, STAY_AWAKE) => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => return jobs.recv().ok(),
        }
        spins = spins.wrapping_add(1);
    }
}

/// Whether a spin that began at `since` has lasted `limit`; the clock is read only every
/// [`SPINS_PER_CLOCK_READ`] spins, as reading it costs more than a spin.
fn spun_out(spins: u32, since: Instant, limit: Duration) -> bool {
    spins % SPINS_PER_CLOCK_READ == SPINS_PER_CLOCK_READ - 1 && since.elapsed() >= limit
}

/// Under a microsecond of spinning between looks at the clock.
const SPINS_PER_CLOCK_READ: u32 = 32;

/// The result of a job on a [`QuickLane`], to wait for or to be called back with.
pub struct Ticket<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    /// Set with `state` becoming `Finished`: lets a waiter poll without taking the lock.
    finished: AtomicBool,
    state: Mutex<State<T>>,
}

enum State<T> {
    Running,
    Finished(T),
    CallBack(Box<dyn FnOnce(T) + Send>),
    Delivered,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn finish(&self, value: T) {
        let mut state = self.lock();
        match mem::replace(&mut *state, State::Delivered) {
            State::CallBack(done) => {
                drop(state);
                done(value);
            }
            State::Running => {
                *state = State::Finished(value);
                self.finished.store(true, Ordering::Release);
            }
            State::Finished(_) | State::Delivered => unreachable!("a job finishes once"),
        }
    }
}

impl<T> Ticket<T> {
    /// A ticket for a result there already (work done in place, no job for the lane).
    pub fn ready(value: T) -> Self {
        let shared = Shared { finished: AtomicBool::new(true), state: Mutex::new(State::Finished(value)) };
        Ticket { shared: Arc::new(shared) }
    }

    /// The result if the job ends within `limit` (spinning, not sleeping, meanwhile); otherwise
    /// the ticket back.
    pub fn wait_for(self, limit: Duration) -> std::result::Result<T, Self> {
        let started = Instant::now();
        let mut spins = 0u32;
        while !self.shared.finished.load(Ordering::Acquire) {
            if spun_out(spins, started, limit) {
                return Err(self);
            }
            spins = spins.wrapping_add(1);
            std::hint::spin_loop();
        }
        match mem::replace(&mut *self.shared.lock(), State::Delivered) {
            State::Finished(value) => Ok(value),
            _ => unreachable!("`finished` is set only with the result in place"),
        }
    }

    /// Calls `done` with the result: on the lane's thread when the job ends, or at once, on this
    /// thread, if it already has.
    pub fn on_done(self, done: impl FnOnce(T) + Send + 'static) {
        let mut state = self.shared.lock();
        match mem::replace(&mut *state, State::Delivered) {
            State::Finished(value) => {
                drop(state);
                done(value);
            }
            State::Running => *state = State::CallBack(Box::new(done)),
            State::CallBack(_) | State::Delivered => unreachable!("a ticket is used once"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn a_waiter_gets_the_result() {
        let lane = QuickLane::default();
        for i in 0..1000u32 {
            let ticket = lane.run(move || Ok(i * 2));
            let result = match ticket.wait_for(Duration::from_secs(10)) {
                Ok(result) => result,
                Err(_) => panic!("job {i} did not finish in 10 s"),
            };
            assert_eq!(result.unwrap(), i * 2);
        }
    }

    #[test]
    fn a_slow_job_hands_its_result_to_the_callback() {
        let lane = QuickLane::default();
        let ticket = lane.run(|| {
            std::thread::sleep(Duration::from_millis(50));
            Ok("late")
        });
        let Err(ticket) = ticket.wait_for(Duration::from_micros(10)) else { panic!("a 50 ms job finished in 10 µs") };
        let (sender, receiver) = channel();
        ticket.on_done(move |result| sender.send(result.unwrap()).unwrap());
        assert_eq!(receiver.recv_timeout(Duration::from_secs(10)).unwrap(), "late");
    }

    #[test]
    fn a_finished_job_calls_back_at_once() {
        let lane = QuickLane::default();
        let ticket = lane.run(|| Ok(7));
        let Ok(ticket_again) = lane.run(|| Ok(())).wait_for(Duration::from_secs(10)) else { panic!("no result") };
        ticket_again.unwrap();
        // The lane runs jobs in order, so the first has finished by now.
        let (sender, receiver) = channel();
        ticket.on_done(move |result| sender.send(result.unwrap()).unwrap());
        assert_eq!(receiver.try_recv().unwrap(), 7);
    }

    #[test]
    fn a_stopped_lane_finishes_what_it_has_and_runs_later_jobs_in_place() {
        let lane = QuickLane::default();
        let queued = lane.run(|| {
            std::thread::sleep(Duration::from_millis(20));
            Ok(std::thread::current().name().map(str::to_owned))
        });
        lane.stop();
        let Ok(queued) = queued.wait_for(Duration::from_secs(10)) else { panic!("the queued job did not finish") };
        assert_eq!(queued.unwrap().as_deref(), Some("quick-lane"));
        let here = std::thread::current().name().map(str::to_owned);
        let Ok(later) = lane.run(|| Ok(std::thread::current().name().map(str::to_owned))).wait_for(Duration::ZERO)
        else {
            panic!("a job on a stopped lane runs before `run` returns")
        };
        assert_eq!(later.unwrap(), here);
    }

    #[test]
    fn a_panicking_job_reports_an_error_and_the_lane_goes_on() {
        let lane = QuickLane::default();
        let failed = lane.run::<()>(|| panic!("boom")).wait_for(Duration::from_secs(10));
        let Ok(Err(error)) = failed else { panic!("expected an error result") };
        assert!(error.to_string().contains("panicked"), "{error}");
        let Ok(next) = lane.run(|| Ok(1)).wait_for(Duration::from_secs(10)) else { panic!("no result") };
        assert_eq!(next.unwrap(), 1);
    }
}
