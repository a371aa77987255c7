//! Bounded batch queues for log records and spans, in front of the OTLP exporters.
//! Owns the drop policy: when a queue is full the newest item is dropped and
//! counted (the SDK's own batch processors drop the same way but do not let us
//! count). Must not block the emitting thread: `push` never waits, and every
//! export runs under a deadline on the export runtime.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{LogExporter, SpanExporter};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter as _, SpanProcessor};

use super::export::{BatchSettings, DropCounters, ExportRuntime, Signal};

/// Where a batch goes. `Err` means the whole batch was lost.
pub trait BatchSink<T>: Send + 'static {
    fn export(&mut self, batch: Vec<T>) -> OTelSdkResult;
    fn shutdown(&mut self);
}

struct State<T> {
    items: VecDeque<T>,
    shutting_down: bool,
    stopped: bool,
    flush_requested: u64,
    flush_done: u64,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
    done: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic in an exporter must not take telemetry down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bounded queue drained by one worker thread in batches.
pub struct BoundedQueue<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    settings: BatchSettings,
    signal: Signal,
    drops: Arc<DropCounters>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Send + 'static> fmt::Debug for BoundedQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedQueue")
            .field("signal", &self.signal)
            .field("settings", &self.settings)
            .finish()
    }
}

impl<T: Send + 'static> BoundedQueue<T> {
    pub fn start(
        signal: Signal,
        settings: BatchSettings,
        drops: Arc<DropCounters>,
        mut sink: impl BatchSink<T>,
    ) -> std::io::Result<BoundedQueue<T>> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                items: VecDeque::new(),
                shutting_down: false,
                stopped: false,
                flush_requested: 0,
                flush_done: 0,
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let worker_shared = shared.clone();
        let worker_drops = drops.clone();
        let worker = std::thread::Builder::new()
            .name(format!("otel-batch-{}", signal.as_str()))
            .spawn(move || {
                run_worker(&worker_shared, settings, signal, &worker_drops, &mut sink);
                sink.shutdown();
                let mut st = worker_shared.lock();
                st.stopped = true;
                worker_shared.done.notify_all();
            })?;
        Ok(BoundedQueue {
            shared,
            settings,
            signal,
            drops,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Never waits: a full (or closed) queue drops the item and counts it.
    pub fn push(&self, item: T) {
        let mut st = self.shared.lock();
        if st.shutting_down || st.items.len() >= self.settings.max_queue_size {
            drop(st);
            self.drops.add(self.signal, 1);
            return;
        }
        st.items.push_back(item);
        if st.items.len() >= self.settings.max_export_batch_size {
            self.shared.wake.notify_one();
        }
    }

    /// Exports everything queued now, waiting at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        st.flush_requested += 1;
        let want = st.flush_requested;
        self.shared.wake.notify_one();
        while st.flush_done < want && !st.stopped {
            let now = Instant::now();
            if now >= deadline {
                return Err(OTelSdkError::Timeout(timeout));
            }
            st = self
                .shared
                .done
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    /// Exports what is queued and stops, waiting at most `timeout`; past it the
    /// worker is left to finish its current (deadline-bound) export alone.
    pub fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        if st.stopped {
            return Ok(());
        }
        st.shutting_down = true;
        self.shared.wake.notify_one();
        while !st.stopped {
            let now = Instant::now();
            if now >= deadline {
                return Err(OTelSdkError::Timeout(timeout));
            }
            st = self
                .shared
                .done
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(st);
        if let Some(handle) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = handle.join();
        }
        Ok(())
    }
}

fn run_worker<T>(
    shared: &Shared<T>,
    settings: BatchSettings,
    signal: Signal,
    drops: &DropCounters,
    sink: &mut impl BatchSink<T>,
) {
    loop {
        let (batch, flush_mark, stop) = {
            let mut st = shared.lock();
            let deadline = Instant::now() + settings.scheduled_delay;
            while st.items.len() < settings.max_export_batch_size
                && !st.shutting_down
                && st.flush_requested == st.flush_done
            {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st = shared
                    .wake
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let n = st.items.len().min(settings.max_export_batch_size);
            let batch: Vec<T> = st.items.drain(..n).collect();
            (
                batch,
                st.flush_requested,
                st.shutting_down && st.items.is_empty(),
            )
        };
        if !batch.is_empty() {
            let n = batch.len() as u64;
            if sink.export(batch).is_err() {
                drops.add(signal, n);
            }
        }
        let mut st = shared.lock();
        if st.items.is_empty() && st.flush_done < flush_mark {
            st.flush_done = flush_mark;
            shared.done.notify_all();
        }
        if stop {
            return;
        }
    }
}

/// Log records to the OTLP log exporter.
pub struct LogBatchSink {
    pub exporter: LogExporter,
    pub runtime: Arc<ExportRuntime>,
    pub deadline: Duration,
}

impl BatchSink<(SdkLogRecord, InstrumentationScope)> for LogBatchSink {
    fn export(&mut self, batch: Vec<(SdkLogRecord, InstrumentationScope)>) -> OTelSdkResult {
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            batch.iter().map(|(r, s)| (r, s)).collect();
        let exporter = &self.exporter;
        self.runtime
            .run_bounded(self.deadline, exporter.export(LogBatch::new(&refs)))
    }

    fn shutdown(&mut self) {
        let _ = self.exporter.shutdown_with_timeout(self.deadline);
    }
}

/// Spans to the OTLP span exporter.
pub struct SpanBatchSink {
    pub exporter: SpanExporter,
    pub runtime: Arc<ExportRuntime>,
    pub deadline: Duration,
}

impl BatchSink<SpanData> for SpanBatchSink {
    fn export(&mut self, batch: Vec<SpanData>) -> OTelSdkResult {
        let exporter = &self.exporter;
        self.runtime
            .run_bounded(self.deadline, exporter.export(batch))
    }

    fn shutdown(&mut self) {
        let _ = self.exporter.shutdown_with_timeout(self.deadline);
    }
}

/// The logger provider's processor: copies each record into the bounded queue.
#[derive(Debug)]
pub struct BoundedLogProcessor(pub BoundedQueue<(SdkLogRecord, InstrumentationScope)>);

impl LogProcessor for BoundedLogProcessor {
    fn emit(&self, data: &mut SdkLogRecord, instrumentation: &InstrumentationScope) {
        self.0.push((data.clone(), instrumentation.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.flush(self.0.settings.export_timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown(timeout)
    }
}

/// The tracer provider's processor: queues each ended span.
#[derive(Debug)]
pub struct BoundedSpanProcessor(pub BoundedQueue<SpanData>);

impl SpanProcessor for BoundedSpanProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.0.push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.flush(self.0.settings.export_timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A sink that blocks until told to go on, so the queue fills up.
    struct Gated {
        gate: Arc<(Mutex<bool>, Condvar)>,
        seen: mpsc::Sender<usize>,
        fail: bool,
    }

    impl BatchSink<u32> for Gated {
        fn export(&mut self, batch: Vec<u32>) -> OTelSdkResult {
            let (m, cv) = &*self.gate;
            let mut open = m.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            let _ = self.seen.send(batch.len());
            if self.fail {
                Err(OTelSdkError::InternalFailure("down".into()))
            } else {
                Ok(())
            }
        }
        fn shutdown(&mut self) {}
    }

    fn settings(queue: usize, batch: usize) -> BatchSettings {
        BatchSettings {
            max_queue_size: queue,
            scheduled_delay: Duration::from_millis(20),
            max_export_batch_size: batch,
            export_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn full_queue_drops_the_newest_item_and_counts_it() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        let drops = Arc::new(DropCounters::default());
        let q = BoundedQueue::start(
            Signal::Logs,
            settings(4, 1),
            drops.clone(),
            Gated {
                gate: gate.clone(),
                seen: tx,
                fail: false,
            },
        )
        .unwrap();
        // The worker takes one item and blocks in export; then four fit.
        q.push(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !q.shared.lock().items.is_empty() {
            assert!(
                Instant::now() < deadline,
                "worker never took the first item"
            );
            std::thread::yield_now();
        }
        for i in 1..=6 {
            q.push(i);
        }
        assert_eq!(drops.get(Signal::Logs), 2);
        assert_eq!(
            q.shared.lock().items.iter().copied().collect::<Vec<_>>(),
            vec![1, 2, 3, 4],
            "the newest items are the ones dropped"
        );
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        q.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(rx.try_iter().sum::<usize>(), 5);
        assert_eq!(drops.get(Signal::Logs), 2);
    }

    #[test]
    fn failed_export_counts_the_batch_and_shutdown_is_bounded() {
        let gate = Arc::new((Mutex::new(true), Condvar::new()));
        let (tx, _rx) = mpsc::channel();
        let drops = Arc::new(DropCounters::default());
        let q = BoundedQueue::start(
            Signal::Traces,
            settings(100, 10),
            drops.clone(),
            Gated {
                gate: gate.clone(),
                seen: tx,
                fail: true,
            },
        )
        .unwrap();
        for i in 0..7 {
            q.push(i);
        }
        q.flush(Duration::from_secs(5)).unwrap();
        assert_eq!(drops.get(Signal::Traces), 7);

        // A sink stuck forever: shutdown returns at its bound.
        *gate.0.lock().unwrap() = false;
        q.push(1);
        let started = Instant::now();
        assert!(q.shutdown(Duration::from_millis(300)).is_err());
        assert!(started.elapsed() < Duration::from_secs(3));
        q.push(2);
        assert_eq!(drops.get(Signal::Traces), 8, "a closed queue counts drops");
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }
}
