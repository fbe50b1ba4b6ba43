//! The recorder: a writer thread fed by a bounded channel, off the live path.
//!
//! The processing thread hands each frame over with [`Recorder::offer`], which never blocks:
//! when the writer is behind (slow disk) the frame is dropped from the recording and counted,
//! the live frame is untouched (mini-redis `BufferedClient`: bounded `mpsc` + `try_send`).
//! Placed dots and design changes of a dropped frame are kept and sent with the next frame, so
//! the session's events are never lost.
//!
//! The writer closes an MCAP chunk (zstd) at least every [`FLUSH_EVERY`], so a crash or
//! `kill -9` loses at most that much; when the channel closes (the pipeline stops, on Ctrl-C
//! or SIGTERM) it writes the last statistics and finishes the file with its summary and index
//! (rerun `FileSink`: `Drop` flushes and joins).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use base64::Engine as _;
use serde::Serialize;

use super::schema::{
    self, CameraCalibration, DesignMsg, DetectionsMsg, FoxTime, RecorderStatsMsg, SessionInfo,
};
use super::RecordError;
use crate::planning::Design;
use crate::session::{OverlayMsg, PlacedDot, PlanSnapshot};

/// The writer closes a chunk at least this often: what a crash can lose.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Recorder statistics are written this often.
pub const STATS_EVERY: Duration = Duration::from_secs(1);
/// Frames the writer may fall behind before frames are dropped from the recording (about a
/// second at 30 fps, a few megabytes).
pub const QUEUE_FRAMES: usize = 30;
/// zstd level: fast (the frames are JPEG already; the JSON compresses well at any level).
const ZSTD_LEVEL: u32 = 1;
/// Target uncompressed chunk size; chunks are also closed every [`FLUSH_EVERY`].
const CHUNK_BYTES: u64 = 4 << 20;

/// Everything recorded about one processed frame.
#[derive(Debug, Clone)]
pub struct FrameRecord {
    /// The frame.
    pub seq: u64,
    /// Capture time (the log time of every message of the frame).
    pub captured_at: Instant,
    /// The picture, JPEG, as the page got it and as the detector saw it (decoded).
    pub jpeg: Bytes,
    /// The overlay message.
    pub overlay: OverlayMsg,
    /// The overlay message exactly as sent to the page.
    pub overlay_json: Utf8Bytes,
    /// The detections.
    pub detections: DetectionsMsg,
    /// The plan after this frame.
    pub plan: PlanSnapshot,
    /// Dots placed on this frame.
    pub placed: Vec<PlacedDot>,
    /// The design, when it changed on this frame (and on the first frame).
    pub design: Option<Design>,
}

/// What goes down the channel: a whole frame, or only the events of a dropped one.
#[derive(Debug)]
enum Item {
    Frame(Box<FrameRecord>),
    /// The names changed (the page): the `session` Metadata record is written again with them.
    People(schema::People),
    Events {
        seq: u64,
        captured_at: Instant,
        placed: Vec<PlacedDot>,
        design: Option<Design>,
    },
}

pub use crate::metrics::RecorderStatus;

/// Counters shared between the handle and the writer thread.
#[derive(Debug, Default)]
struct Shared {
    offered: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    bytes: AtomicU64,
    error: Mutex<Option<String>>,
}

impl Shared {
    fn stats(&self, last: bool) -> RecorderStatsMsg {
        RecorderStatsMsg {
            frames_offered: self.offered.load(Ordering::Relaxed),
            frames_written: self.written.load(Ordering::Relaxed),
            frames_dropped: self.dropped.load(Ordering::Relaxed),
            bytes_written: self.bytes.load(Ordering::Relaxed),
            last,
        }
    }
}

/// Maps `Instant`s to Unix nanoseconds (log times), from one reading of both clocks.
#[derive(Debug, Clone, Copy)]
struct Clock {
    at: Instant,
    unix_ns: u64,
}

impl Clock {
    fn now() -> Self {
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            at: Instant::now(),
            unix_ns,
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        let after = t.saturating_duration_since(self.at).as_nanos() as u64;
        let before = self.at.saturating_duration_since(t).as_nanos() as u64;
        (self.unix_ns + after).saturating_sub(before)
    }
}

/// Handle on the writer thread, owned by the processing thread.
#[derive(Debug)]
pub struct Recorder {
    tx: Option<SyncSender<Item>>,
    thread: Option<JoinHandle<Result<RecorderStatsMsg, RecordError>>>,
    shared: Arc<Shared>,
    /// Events of dropped frames, waiting for room in the channel.
    pending: VecDeque<Item>,
    path: PathBuf,
    clock: Clock,
}

impl Recorder {
    /// Creates `path` (replacing it) and starts the writer thread; the first messages are the
    /// session metadata and, when known, the camera calibration.
    ///
    /// # Errors
    /// [`RecordError::Io`] when the file cannot be created; [`RecordError::Mcap`] when the
    /// header cannot be written.
    pub fn create(
        path: &Path,
        info: SessionInfo,
        calibration: Option<CameraCalibration>,
    ) -> Result<Self, RecordError> {
        Self::create_with(path, info, calibration, true)
    }

    /// [`Recorder::create`] that replaces an existing file only when `overwrite` says so
    /// (`serve --record F --overwrite`); otherwise an existing file is an error and is left
    /// untouched.
    ///
    /// # Errors
    /// As [`Recorder::create`]; an existing file without `overwrite` is [`RecordError::Io`]
    /// with the cause "exists; pass --overwrite to replace it".
    pub fn create_with(
        path: &Path,
        info: SessionInfo,
        calibration: Option<CameraCalibration>,
        overwrite: bool,
    ) -> Result<Self, RecordError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if overwrite {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let file = options.open(path).map_err(|source| RecordError::Io {
            path: path.to_path_buf(),
            source: if source.kind() == std::io::ErrorKind::AlreadyExists {
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the file exists; pass --overwrite to replace it",
                )
            } else {
                source
            },
        })?;
        Self::with_writer(path, BufWriter::new(file), info, calibration, QUEUE_FRAMES)
    }

    /// Like [`Recorder::create`], on any seekable writer and with `queue` frames of slack;
    /// `path` only names the recording in messages (tests use a deliberately slow writer).
    ///
    /// # Errors
    /// See [`Recorder::create`].
    pub fn with_writer<W: Write + Seek + Send + 'static>(
        path: &Path,
        w: W,
        info: SessionInfo,
        calibration: Option<CameraCalibration>,
        queue: usize,
    ) -> Result<Self, RecordError> {
        let mcap_err = |source| RecordError::Mcap {
            path: path.to_path_buf(),
            source,
        };
        let options = mcap::WriteOptions::new()
            .profile(schema::PROFILE)
            .compression(Some(mcap::Compression::Zstd))
            .compression_level(ZSTD_LEVEL)
            .compression_threads(0)
            .chunk_size(Some(CHUNK_BYTES));
        let mut writer = options.create(w).map_err(mcap_err)?;
        // Which software wrote it, as an MCAP Metadata record (also in the session message).
        writer
            .write_metadata(&mcap::records::Metadata {
                name: schema::METADATA_VERSIONS.into(),
                metadata: schema::versions_metadata(&info),
            })
            .map_err(mcap_err)?;
        let clock = Clock::now();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::sync_channel(queue.max(1));
        let mut sink = Sink {
            writer,
            ids: BTreeMap::new(),
            session_written: false,
            session_number: None,
            info: info.clone(),
            sequence: 0,
            shared: shared.clone(),
            clock,
            path: path.to_path_buf(),
            last_ns: info.started_unix_ns,
        };
        let started = info.started_unix_ns;
        sink.json(schema::TOPIC_SESSION, started, &info)?;
        if let Some(c) = calibration {
            sink.json(schema::TOPIC_CALIBRATION, started, &c)?;
        }
        // The metadata chunk goes to disk at once: even a file killed in its first second
        // says what it is.
        sink.writer.flush().map_err(mcap_err)?;
        let thread = std::thread::Builder::new()
            .name("record".into())
            .spawn(move || write_loop(sink, &rx))
            .map_err(|source| RecordError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        tracing::info!(file = %path.display(), "recording");
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            shared,
            pending: VecDeque::new(),
            path: path.to_path_buf(),
            clock,
        })
    }

    /// The client's and artist's names changed: the `session` Metadata record is written again
    /// with them (a reader takes the last one). Never blocks; delivered with the next frame at
    /// the latest, like a placed dot of a dropped frame.
    pub fn set_people(&mut self, people: schema::People) {
        self.pending.push_back(Item::People(people));
    }

    /// Unix nanoseconds of an `Instant`, on the recording's clock.
    pub fn unix_ns(&self, t: Instant) -> u64 {
        self.clock.ns(t)
    }

    /// Hands a frame to the writer without ever blocking. Returns `false` when the frame was
    /// dropped from the recording (the writer is behind or has failed); its placed dots and
    /// design change are still recorded, with the next frame that gets through.
    pub fn offer(&mut self, rec: FrameRecord) -> bool {
        self.shared.offered.fetch_add(1, Ordering::Relaxed);
        let Some(tx) = self.tx.as_ref() else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        // Events first, in order; what does not fit waits for the next frame.
        while let Some(item) = self.pending.pop_front() {
            if let Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) =
                tx.try_send(item)
            {
                self.pending.push_front(item);
                break;
            }
        }
        let events_waiting = !self.pending.is_empty();
        let item = Item::Frame(Box::new(rec));
        let sent = if events_waiting {
            Err(TrySendError::Full(item))
        } else {
            tx.try_send(item)
        };
        match sent {
            Ok(()) => true,
            Err(TrySendError::Full(item)) | Err(TrySendError::Disconnected(item)) => {
                let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, file = %self.path.display(), "recorder behind: frames dropped from the recording (live frames are not affected)");
                }
                if let Item::Frame(rec) = item {
                    if !rec.placed.is_empty() || rec.design.is_some() {
                        self.pending.push_back(Item::Events {
                            seq: rec.seq,
                            captured_at: rec.captured_at,
                            placed: rec.placed,
                            design: rec.design,
                        });
                    }
                }
                false
            }
        }
    }

    /// The counters, for `/api/status` and the page.
    pub fn status(&self) -> RecorderStatus {
        let s = self.shared.stats(false);
        RecorderStatus {
            file: self.path.display().to_string(),
            frames_written: s.frames_written,
            frames_dropped: s.frames_dropped,
            bytes_written: s.bytes_written,
            error: self
                .shared
                .error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Writes what is queued, the last statistics, the summary and the index, and joins the
    /// writer thread.
    ///
    /// # Errors
    /// Whatever stopped the writer (disk full, ...), naming the file.
    pub fn finish(mut self) -> Result<RecorderStatsMsg, RecordError> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<RecorderStatsMsg, RecordError> {
        if let Some(tx) = self.tx.take() {
            // Events still waiting: now there is time to wait for room.
            for item in self.pending.drain(..) {
                let _ = tx.send(item);
            }
        }
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(RecordError::Io {
                    path: self.path.clone(),
                    source: std::io::Error::other("the recording thread panicked"),
                })
            }),
            None => Ok(self.shared.stats(true)),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            match self.finish_inner() {
                Ok(stats) => tracing::info!(
                    file = %self.path.display(),
                    frames = stats.frames_written,
                    dropped = stats.frames_dropped,
                    "recording finished"
                ),
                Err(err) => tracing::error!(cause = %err, "recording not finished cleanly"),
            }
        }
    }
}

/// The writer thread's side.
struct Sink<W: Write + Seek> {
    writer: mcap::Writer<W>,
    /// Channel ids by topic; a channel is registered with its first message, so the file has
    /// no empty channels (no `/camera/calibration` without a calibration).
    ids: BTreeMap<&'static str, u16>,
    /// The session, for the `session` Metadata record.
    info: SessionInfo,
    /// Whether the `session` Metadata record is written (with the first design, which gives
    /// the session number; at the end at the latest).
    session_written: bool,
    /// The session number of the latest design.
    session_number: Option<u8>,
    sequence: u32,
    shared: Arc<Shared>,
    clock: Clock,
    path: PathBuf,
    last_ns: u64,
}

impl<W: Write + Seek> Sink<W> {
    fn mcap_err(&self, source: mcap::McapError) -> RecordError {
        RecordError::Mcap {
            path: self.path.clone(),
            source,
        }
    }

    /// The channel of `topic`, registered (schema and channel) on first use.
    fn channel(&mut self, topic: &str) -> Result<u16, RecordError> {
        if let Some(&id) = self.ids.get(topic) {
            return Ok(id);
        }
        let Some(&(topic, schema_name)) = schema::CHANNELS.iter().find(|(t, _)| *t == topic) else {
            return Err(RecordError::BadMessage {
                path: self.path.clone(),
                topic: topic.to_string(),
                reason: "not a channel of the recording format".into(),
            });
        };
        let schema = serde_json::to_vec(&schema::schema_for(schema_name))
            .map_err(|e| self.mcap_err(mcap::McapError::from(std::io::Error::other(e))))?;
        let schema_id = self
            .writer
            .add_schema(schema_name, "jsonschema", &schema)
            .map_err(|e| self.mcap_err(e))?;
        let id = self
            .writer
            .add_channel(schema_id, topic, "json", &BTreeMap::new())
            .map_err(|e| self.mcap_err(e))?;
        self.ids.insert(topic, id);
        Ok(id)
    }

    fn metadata(
        &mut self,
        name: &str,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), RecordError> {
        self.writer
            .write_metadata(&mcap::records::Metadata {
                name: name.into(),
                metadata,
            })
            .map_err(|e| self.mcap_err(e))
    }

    /// The `session` Metadata record, once (again only when the names change).
    fn session_metadata(&mut self, design: Option<&Design>) -> Result<(), RecordError> {
        if let Some(d) = design {
            self.session_number = Some(d.session_or_default());
        }
        if self.session_written {
            return Ok(());
        }
        self.session_written = true;
        let m = schema::session_metadata(&self.info, self.session_number);
        self.metadata(schema::METADATA_SESSION, m)
    }

    /// New names: the `session` Metadata record again, with them.
    fn people(&mut self, people: &schema::People) -> Result<(), RecordError> {
        self.info.client.clone_from(&people.client);
        self.info.artist.clone_from(&people.artist);
        self.session_written = false;
        self.session_metadata(None)
    }

    fn raw(&mut self, topic: &str, log_time: u64, data: &[u8]) -> Result<(), RecordError> {
        let channel_id = self.channel(topic)?;
        self.sequence = self.sequence.wrapping_add(1);
        let header = mcap::records::MessageHeader {
            channel_id,
            sequence: self.sequence,
            log_time,
            publish_time: log_time,
        };
        self.writer
            .write_to_known_channel(&header, data)
            .map_err(|e| self.mcap_err(e))?;
        self.shared
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.last_ns = self.last_ns.max(log_time);
        Ok(())
    }

    fn json<T: Serialize>(
        &mut self,
        topic: &str,
        log_time: u64,
        value: &T,
    ) -> Result<(), RecordError> {
        let data = serde_json::to_vec(value).map_err(|e| RecordError::BadMessage {
            path: self.path.clone(),
            topic: topic.to_string(),
            reason: e.to_string(),
        })?;
        self.raw(topic, log_time, &data)
    }

    fn events(
        &mut self,
        seq: u64,
        ns: u64,
        placed: &[PlacedDot],
        design: Option<&Design>,
    ) -> Result<(), RecordError> {
        if let Some(design) = design {
            self.session_metadata(Some(design))?;
            let msg = DesignMsg {
                seq,
                design: design.clone(),
            };
            self.json(schema::TOPIC_DESIGN, ns, &msg)?;
            self.metadata(schema::METADATA_DESIGN, schema::design_metadata(&msg))?;
        }
        for p in placed {
            self.json(schema::TOPIC_PLACED, ns, p)?;
        }
        Ok(())
    }

    fn frame(&mut self, rec: &FrameRecord) -> Result<(), RecordError> {
        let _span = tracing::trace_span!("record", seq = rec.seq).entered();
        let ns = self.clock.ns(rec.captured_at);
        let stamp = FoxTime::from_ns(ns);
        let image = schema::CompressedImage {
            timestamp: stamp,
            frame_id: "camera".into(),
            data: base64::engine::general_purpose::STANDARD.encode(&rec.jpeg),
            format: "jpeg".into(),
        };
        self.json(schema::TOPIC_IMAGE, ns, &image)?;
        self.json(
            schema::TOPIC_ANNOTATIONS,
            ns,
            &schema::annotations(&rec.overlay, stamp),
        )?;
        self.raw(
            schema::TOPIC_OVERLAY,
            ns,
            rec.overlay_json.as_str().as_bytes(),
        )?;
        self.json(schema::TOPIC_DETECTIONS, ns, &rec.detections)?;
        self.json(schema::TOPIC_PLAN, ns, &rec.plan)?;
        self.events(rec.seq, ns, &rec.placed, rec.design.as_ref())?;
        self.shared.written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn item(&mut self, item: &Item) -> Result<(), RecordError> {
        match item {
            Item::Frame(rec) => self.frame(rec),
            Item::People(people) => self.people(people),
            Item::Events {
                seq,
                captured_at,
                placed,
                design,
            } => {
                let ns = self.clock.ns(*captured_at);
                self.events(*seq, ns, placed, design.as_ref())
            }
        }
    }

    fn stats(&mut self, last: bool) -> Result<(), RecordError> {
        let stats = self.shared.stats(last);
        let ns = self.last_ns;
        self.json(schema::TOPIC_RECORDER, ns, &stats)
    }
}

/// The writer thread: writes until the channel closes, closing a chunk every [`FLUSH_EVERY`].
fn write_loop<W: Write + Seek>(
    mut sink: Sink<W>,
    rx: &Receiver<Item>,
) -> Result<RecorderStatsMsg, RecordError> {
    let mut failed: Option<RecordError> = None;
    let mut last_flush = Instant::now();
    let mut last_stats = Instant::now();
    loop {
        let item = match rx.recv_timeout(FLUSH_EVERY) {
            Ok(item) => Some(item),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if failed.is_some() {
            if let Some(Item::Frame(_)) = item {
                sink.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let mut step = || -> Result<(), RecordError> {
            if let Some(item) = &item {
                sink.item(item)?;
            }
            if last_stats.elapsed() >= STATS_EVERY {
                sink.stats(false)?;
                last_stats = Instant::now();
            }
            if last_flush.elapsed() >= FLUSH_EVERY {
                sink.writer.flush().map_err(|e| sink.mcap_err(e))?;
                last_flush = Instant::now();
            }
            Ok(())
        };
        if let Err(err) = step() {
            // With every cause: the MCAP library's "I/O error from writing" alone hides the
            // "No space left on device" underneath, which is what the artist needs to read.
            let message = super::with_causes(&err);
            tracing::error!(cause = %message, "recording stopped: later frames are dropped from it");
            *sink.shared.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
            failed = Some(err);
        }
    }
    if let Some(err) = failed {
        return Err(err);
    }
    sink.session_metadata(None)?;
    sink.stats(true)?;
    sink.writer.finish().map_err(|e| sink.mcap_err(e))?;
    let stats = sink.shared.stats(true);
    tracing::debug!(?stats, "recording finished with summary and index");
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Detection, DotKind};

    /// A writer that takes `delay` per write: a slow disk.
    struct Slow {
        inner: std::io::Cursor<Vec<u8>>,
        delay: Duration,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.delay);
            self.inner.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            *self.out.lock().expect("test lock") = self.inner.get_ref().clone();
            Ok(())
        }
    }

    impl Seek for Slow {
        fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    pub(crate) fn info() -> SessionInfo {
        SessionInfo {
            format: "stipple".into(),
            format_version: schema::FORMAT_VERSION,
            stipple_version: env!("CARGO_PKG_VERSION").into(),
            source: "test".into(),
            model: "none (classical)".into(),
            px_per_mm: 20.0,
            width: 64,
            height: 48,
            jpeg_quality: 70,
            recommendations: 12,
            started_unix_ns: 1_700_000_000_000_000_000,
            detected_on: "decoded-jpeg".into(),
            client: Some("C. Client".into()),
            artist: Some("A. Student".into()),
        }
    }

    fn record(seq: u64, placed: usize) -> FrameRecord {
        let overlay = OverlayMsg {
            seq,
            captured_unix_ms: 0.0,
            latency_ms: 0.0,
            width: 64,
            height: 48,
            dots: vec![[10.0, 10.0, 2.0, 1.0]],
            recs: vec![],
            target: None,
            zones: vec![],
            heat: None,
            image_from_skin: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            registered: true,
            dots_placed: 0,
            recs_done: 0,
            source_status: String::new(),
            not_skin: Vec::new(),
            declined: Vec::new(),
            ..OverlayMsg::default()
        };
        FrameRecord {
            seq,
            captured_at: Instant::now(),
            jpeg: Bytes::from(vec![0xFF, 0xD8, 0xFF, 0xD9]),
            overlay_json: serde_json::to_string(&overlay).expect("plain data").into(),
            overlay,
            detections: DetectionsMsg {
                seq,
                width: 64,
                height: 48,
                mask_seq: None,
                detections: vec![Detection {
                    x: 10.0,
                    y: 10.0,
                    radius: 2.0,
                    kind: DotKind::Pigment,
                    score: 1.0,
                    hairs: None,
                }],
            },
            plan: PlanSnapshot {
                seq,
                ..PlanSnapshot::default()
            },
            placed: (0..placed)
                .map(|i| PlacedDot {
                    seq,
                    in_skin_mm: [i as f64, 0.0],
                    radius_mm: 0.25,
                    nearest_rec_mm: None,
                    nearest_dot_mm: None,
                    min_spacing_mm: 0.7,
                })
                .collect(),
            design: None,
        }
    }

    #[test]
    fn a_slow_disk_drops_recorded_frames_never_blocks_and_keeps_events(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let out = Arc::new(Mutex::new(Vec::new()));
        let slow = Slow {
            inner: std::io::Cursor::new(Vec::new()),
            delay: Duration::from_millis(20),
            out: out.clone(),
        };
        let mut rec = Recorder::with_writer(Path::new("slow.mcap"), slow, info(), None, 2)?;
        let t = Instant::now();
        let mut accepted = 0;
        for seq in 0..200 {
            // Every frame places one dot: none of them may be lost.
            accepted += u64::from(rec.offer(record(seq, 1)));
        }
        // Offering never waits for the disk.
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        let stats = rec.finish()?;
        assert_eq!(stats.frames_offered, 200);
        assert!(stats.frames_dropped > 0, "{stats:?}");
        assert_eq!(stats.frames_written, accepted);
        assert_eq!(stats.frames_written + stats.frames_dropped, 200);
        let bytes = out.lock().map_err(|e| e.to_string())?.clone();
        let summary = mcap::Summary::read(&bytes)?.ok_or("no summary")?;
        assert!(!summary.chunk_indexes.is_empty());
        let mut placed = 0;
        let mut last_stats = None;
        for m in mcap::MessageStream::new(&bytes)? {
            let m = m?;
            match m.channel.topic.as_str() {
                schema::TOPIC_PLACED => placed += 1,
                schema::TOPIC_RECORDER => {
                    last_stats = Some(serde_json::from_slice::<RecorderStatsMsg>(&m.data)?)
                }
                _ => {}
            }
        }
        assert_eq!(placed, 200, "every placed dot is in the file");
        let last = last_stats.ok_or("no recorder stats")?;
        assert!(last.last);
        assert_eq!(last.frames_dropped, stats.frames_dropped);
        Ok(())
    }
}
