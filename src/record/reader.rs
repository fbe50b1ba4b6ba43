//! Reading a recording back: [`Recording::open`].
//!
//! The file is read front to back (`mcap::MessageStream`, end magic not required), so a file
//! cut short by a crash or `kill -9` gives every message of its complete chunks; where the
//! stream stops early, [`Recording::damage`] says why. A clean file also has its summary and
//! index ([`Recording::finished`]). Anything else fails with an error naming the file: not
//! MCAP, a truncated header, an MCAP without Stipple's session channel, another format
//! version, or no complete frame.
//!
//! Frames are assembled from their messages, which share the capture time as log time: the
//! JPEG ([`schema::TOPIC_IMAGE`]), the overlay, the detections and the plan. A frame whose
//! picture or overlay did not make it into a complete chunk is left out.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use base64::Engine as _;
use mcap::read::Options;

use super::schema::{
    self, CameraCalibration, CompressedImage, DesignMsg, DetectionsMsg, RecorderStatsMsg,
    SessionInfo, FORMAT_VERSION,
};
use super::RecordError;
use crate::planning::Design;
use crate::session::{OverlayMsg, PlacedDot, PlanSnapshot};

/// MCAP's magic bytes, at both ends of a file.
const MAGIC: &[u8] = b"\x89MCAP0\r\n";

/// One recorded frame.
#[derive(Debug, Clone)]
pub struct RecordedFrame {
    /// Sequence number of the frame in the live session.
    pub seq: u64,
    /// Capture time, Unix nanoseconds (the log time).
    pub log_time_ns: u64,
    /// The picture, JPEG.
    pub jpeg: Bytes,
    /// The overlay message as the page got it.
    pub overlay_json: String,
    /// The same, parsed.
    pub overlay: OverlayMsg,
    /// The detections, when recorded.
    pub detections: Option<DetectionsMsg>,
    /// The plan after the frame, when recorded.
    pub plan: Option<PlanSnapshot>,
}

/// A recording, read into memory.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The file.
    pub path: PathBuf,
    /// Session metadata.
    pub info: SessionInfo,
    /// Camera calibration, when it was recorded.
    pub calibration: Option<CameraCalibration>,
    /// Frames in order of `seq`.
    pub frames: Vec<RecordedFrame>,
    /// Dots placed, in order.
    pub placed: Vec<PlacedDot>,
    /// Design changes, in order; the first applies from the first frame.
    pub designs: Vec<DesignMsg>,
    /// The recorder's last statistics.
    pub recorder: Option<RecorderStatsMsg>,
    /// Whether the file ends with its summary and index (a clean stop).
    pub finished: bool,
    /// Why reading stopped before the end, for a damaged or truncated file.
    pub damage: Option<String>,
    /// Messages left out because they did not parse (warned about once each).
    pub bad_messages: u64,
    /// The file's MCAP Metadata records by name (`session`, `versions`, `design`; the last
    /// record of a name wins), empty for files written before they existed.
    pub metadata: BTreeMap<String, BTreeMap<String, String>>,
}

/// Largest recording read (it is read whole into memory): about 50 minutes at 1280x720 and
/// 30 fps.
pub const MAX_RECORDING_BYTES: u64 = 8 * 1024 * 1024 * 1024;

impl Recording {
    /// The lens the live session registered through (from the recorded calibration, at the
    /// recording's scale), when it distorts.
    pub fn lens(&self) -> Option<crate::calib::PlaneMap> {
        self.calibration
            .as_ref()
            .and_then(|c| c.lens(self.info.px_per_mm))
    }

    /// Reads a recording.
    ///
    /// # Errors
    /// [`RecordError`] naming the file: unreadable, not MCAP, truncated header, not Stipple's,
    /// another format version, or without a complete frame.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let io = |source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Looked at before opening: opening a FIFO for reading would block until a writer
        // comes, and a device such as /dev/zero never ends.
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file (a recording is read only from a plain file)",
            )));
        }
        if meta.len() > MAX_RECORDING_BYTES {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} bytes, over the limit of {MAX_RECORDING_BYTES} bytes a recording may have",
                    meta.len()
                ),
            )));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open(path).map_err(io)?, MAX_RECORDING_BYTES),
            &mut bytes,
        )
        .map_err(io)?;
        Self::from_bytes(path, &bytes)
    }

    /// Reads a recording held in memory; `path` names it in errors.
    ///
    /// # Errors
    /// See [`Recording::open`].
    #[tracing::instrument(level = "debug", skip(bytes), fields(len = bytes.len()))]
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, RecordError> {
        let path_buf = path.to_path_buf();
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                RecordError::TruncatedHeader {
                    path: path_buf,
                    len: bytes.len() as u64,
                }
            } else {
                RecordError::NotMcap { path: path_buf }
            });
        }
        if !bytes.starts_with(MAGIC) {
            return Err(RecordError::NotMcap { path: path_buf });
        }
        // The header record must be whole: otherwise the file holds nothing at all.
        match mcap::read::LinearReader::new_with_options(bytes, Options::IgnoreEndMagic.into())
            .map_err(|source| RecordError::Mcap {
                path: path_buf.clone(),
                source,
            })?
            .next()
        {
            Some(Ok(mcap::records::Record::Header(_))) => {}
            _ => {
                return Err(RecordError::TruncatedHeader {
                    path: path_buf,
                    len: bytes.len() as u64,
                })
            }
        }
        let summary = mcap::Summary::read(bytes).ok().flatten();
        let finished = summary.is_some();

        // mcap's message stream trusts a chunk header's uncompressed size and allocates it:
        // a corrupt header would ask for exabytes. Stop the stream before such a chunk (the
        // chunk index below still reaches the chunks after it).
        let insane = insane_chunks(bytes);
        let streamed = match insane.first() {
            Some(&at) => &bytes[..at],
            None => bytes,
        };
        let mut parts = Parts::default();
        let mut damage = insane
            .first()
            .map(|at| format!("chunk at byte {at} declares an impossible size"));
        if let Err(err) = for_each_message(
            streamed,
            false,
            &mut HashMap::new(),
            |topic, log_time, data| parts.add(path, topic, log_time, data),
        ) {
            match err {
                Stream::Mcap(err) => damage = Some(err.to_string()),
                Stream::Record(err) => return Err(err),
            }
        }
        if let (Some(d), Some(summary)) = (&damage, &summary) {
            // A damaged chunk in the middle of a finished file: the summary's chunk index says
            // where every chunk starts, so read them one by one and skip only the bad ones.
            let (resynced, skipped) = read_by_chunk_index(path, bytes, summary, &insane)?;
            tracing::warn!(file = %path.display(), cause = %d, skipped = %skipped, "damaged recording: read every intact chunk through the summary's index");
            parts = resynced;
            damage = Some(format!(
                "{d}; resynchronised through the chunk index, skipped: {skipped}"
            ));
        } else if let Some(d) = &damage {
            // No summary (the recording was not finished): walk the records by their lengths,
            // scanning for the next chunk where a length cannot be trusted.
            let (walked, skipped) = read_by_record_walk(path, bytes, &insane)?;
            tracing::warn!(file = %path.display(), cause = %d, skipped = %skipped, "damaged or unfinished recording: read every intact chunk");
            parts = walked;
            damage = Some(format!(
                "{d}; resynchronised by scanning for chunks, skipped: {skipped}"
            ));
        }
        let mut recording = parts.into_recording(path_buf, finished, damage)?;
        recording.metadata = read_metadata(bytes);
        Ok(recording)
    }

    /// A field of the `session` Metadata record (`client`, `artist`, `date`,
    /// `session_number`), falling back to the session message for client and artist.
    pub fn session_field(&self, key: &str) -> Option<String> {
        let from_meta = self
            .metadata
            .get(schema::METADATA_SESSION)
            .and_then(|m| m.get(key))
            .cloned();
        from_meta.or_else(|| match key {
            "client" => self.info.client.clone(),
            "artist" => self.info.artist.clone(),
            "date" => Some(self.info.date()),
            "session_number" => self
                .designs
                .last()
                .map(|d| d.design.session_or_default().to_string()),
            _ => None,
        })
    }

    /// Duration from the first to the last frame, seconds.
    pub fn duration_s(&self) -> f64 {
        match (self.frames.first(), self.frames.last()) {
            (Some(a), Some(b)) => b.log_time_ns.saturating_sub(a.log_time_ns) as f64 / 1e9,
            _ => 0.0,
        }
    }

    /// The design in force on frame `seq`.
    pub fn design_at(&self, seq: u64) -> Design {
        self.designs
            .iter()
            .take_while(|d| d.seq <= seq)
            .last()
            .map(|d| d.design.clone())
            .unwrap_or_default()
    }
}

/// Why [`for_each_message`] stopped.
enum Stream {
    /// The file is damaged here.
    Mcap(mcap::McapError),
    /// The callback refused a message.
    Record(RecordError),
}

/// Calls `f(topic, log_time_ns, data)` for every message of the MCAP in `bytes`, in file order,
/// until the end or the first damage. `mcap::MessageStream` would do this, but it believes
/// the lengths a chunk declares and allocates them (a flipped byte asked for 4 EB); this reads
/// through mcap's sans-io reader with a record length limit of [`MAX_CHUNK_BYTES`].
///
/// `bytes` is a whole file, or (`chunk_only`) one chunk record cut out of one, whose channels
/// come in `topics` (from the summary).
fn for_each_message(
    bytes: &[u8],
    chunk_only: bool,
    topics: &mut HashMap<u16, String>,
    mut f: impl FnMut(&str, u64, &[u8]) -> Result<(), RecordError>,
) -> Result<(), Stream> {
    use mcap::sans_io::{LinearReadEvent, LinearReader, LinearReaderOptions};
    let mut reader = LinearReader::new_with_options(
        LinearReaderOptions::default()
            .with_skip_start_magic(chunk_only)
            .with_skip_end_magic(true)
            // A chunk whose data does not match its CRC is damage, found before any of its
            // messages is handed on.
            .with_prevalidate_chunk_crcs(true)
            .with_record_length_limit(MAX_CHUNK_BYTES as usize),
    );
    let mut rest = bytes;
    while let Some(event) = reader.next_event() {
        match event.map_err(Stream::Mcap)? {
            LinearReadEvent::ReadRequest(need) => {
                let n = need.min(rest.len());
                reader.insert(n).copy_from_slice(&rest[..n]);
                reader.notify_read(n);
                rest = &rest[n..];
            }
            LinearReadEvent::Record { data, opcode } => {
                match mcap::parse_record(opcode, data).map_err(Stream::Mcap)? {
                    mcap::records::Record::Channel(c) => {
                        topics.insert(c.id, c.topic);
                    }
                    mcap::records::Record::Message { header, data } => {
                        let Some(topic) = topics.get(&header.channel_id) else {
                            return Err(Stream::Mcap(mcap::McapError::UnknownChannel(
                                header.sequence,
                                header.channel_id,
                            )));
                        };
                        f(topic, header.log_time, &data).map_err(Stream::Record)?;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// MCAP opcodes the readers below walk by.
const OP_FOOTER: u8 = 0x02;
const OP_CHUNK: u8 = 0x06;

/// The little-endian u64 at byte `k`, if the file holds it.
fn u64_le(bytes: &[u8], k: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(k..k.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Decodes one record (a chunk or any other) completely before anything is used, so a chunk
/// that fails half-way adds nothing; channels it defines are added to `topics`.
fn decode_record(
    record: &[u8],
    topics: &mut HashMap<u16, String>,
) -> Result<Vec<(String, u64, Vec<u8>)>, Stream> {
    let mut messages = Vec::new();
    for_each_message(record, true, topics, |topic, log_time, data| {
        messages.push((topic.to_string(), log_time, data.to_vec()));
        Ok(())
    })?;
    Ok(messages)
}

/// What a resynchronising read skipped, for the damage message.
fn describe_skipped(skipped: Vec<String>) -> String {
    if skipped.is_empty() {
        "none".to_string()
    } else {
        skipped.join(", ")
    }
}

/// Largest uncompressed chunk believed: the writer closes chunks at 4 MiB, plus one message.
const MAX_CHUNK_BYTES: u64 = 64 * 1024 * 1024;

/// Byte offsets of the top-level chunk records whose header declares more than
/// [`MAX_CHUNK_BYTES`] uncompressed, in file order. Records are walked by their lengths
/// (opcode u8, length u64 LE); a Chunk's uncompressed size is the third u64 of its content.
fn insane_chunks(bytes: &[u8]) -> Vec<usize> {
    let u64_at = |i: usize| u64_le(bytes, i);
    let mut out = Vec::new();
    let mut i = MAGIC.len();
    while let (Some(&op), Some(len)) = (bytes.get(i), u64_at(i + 1)) {
        if op == OP_FOOTER {
            break;
        }
        if op == OP_CHUNK && u64_at(i + 9 + 16).is_some_and(|size| size > MAX_CHUNK_BYTES) {
            out.push(i);
        }
        match usize::try_from(len)
            .ok()
            .and_then(|l| i.checked_add(9)?.checked_add(l))
        {
            Some(next) if next <= bytes.len() => i = next,
            _ => break,
        }
    }
    out
}

/// Reads a file without a summary record by record, in file order: every top-level record is
/// decoded on its own (channels are learnt as they come), a chunk that does not decode is
/// skipped, and where a record's opcode or length cannot be true the walk scans forward for
/// the next byte where a chunk with a believable header starts. Returns what was gathered and
/// a description of what was skipped.
fn read_by_record_walk(
    path: &Path,
    bytes: &[u8],
    insane: &[usize],
) -> Result<(Parts, String), RecordError> {
    let mut parts = Parts::default();
    let mut topics: HashMap<u16, String> = HashMap::new();
    let mut skipped = Vec::new();
    let mut chunk_no = 0usize;
    let mut i = MAGIC.len();
    while i < bytes.len() {
        let Some(end) = record_end(bytes, i) else {
            // Not a record boundary: the next believable chunk, if any.
            match (i + 1..bytes.len()).find(|&j| plausible_chunk(bytes, j)) {
                Some(j) => {
                    skipped.push(format!("bytes {i}..{j} (no record there)"));
                    i = j;
                    continue;
                }
                None => {
                    skipped.push(format!("bytes {i}..{} (no chunk after them)", bytes.len()));
                    break;
                }
            }
        };
        let op = bytes[i];
        if op == OP_FOOTER {
            break;
        }
        if op == OP_CHUNK {
            chunk_no += 1;
        }
        if op == OP_CHUNK && insane.contains(&i) {
            skipped.push(format!("chunk {chunk_no} at byte {i} (impossible size)"));
            i = end;
            continue;
        }
        let mut learnt = topics.clone();
        match decode_record(&bytes[i..end], &mut learnt) {
            Ok(messages) => {
                topics = learnt;
                for (topic, log_time, data) in messages {
                    parts.add(path, &topic, log_time, &data)?;
                }
            }
            Err(Stream::Record(err)) => return Err(err),
            Err(Stream::Mcap(err)) if op == OP_CHUNK => {
                skipped.push(format!("chunk {chunk_no} at byte {i} ({err})"));
            }
            Err(Stream::Mcap(err)) => {
                skipped.push(format!("record 0x{op:02x} at byte {i} ({err})"));
            }
        }
        i = end;
    }
    Ok((parts, describe_skipped(skipped)))
}

/// Where the top-level record at `i` ends, when its opcode is one MCAP defines and its length
/// stays inside the file (a chunk's also within [`MAX_CHUNK_BYTES`]).
fn record_end(bytes: &[u8], i: usize) -> Option<usize> {
    let op = *bytes.get(i)?;
    if !(0x01..=0x10).contains(&op) {
        return None;
    }
    let len = u64::from_le_bytes(bytes.get(i + 1..i + 9)?.try_into().ok()?);
    if op == OP_CHUNK && !plausible_chunk(bytes, i) {
        return None;
    }
    let end = i.checked_add(9)?.checked_add(usize::try_from(len).ok()?)?;
    (end <= bytes.len()).then_some(end)
}

/// Whether a chunk record with a believable header starts at `j`: the chunk opcode, a length
/// inside the file, an uncompressed size within [`MAX_CHUNK_BYTES`], a known compression, and
/// records that fit the chunk.
fn plausible_chunk(bytes: &[u8], j: usize) -> bool {
    let u64_at = |k: usize| u64_le(bytes, k);
    let check = || -> Option<bool> {
        if *bytes.get(j)? != OP_CHUNK {
            return Some(false);
        }
        let len = u64_at(j + 1)?;
        let start = u64_at(j + 9)?;
        let end_time = u64_at(j + 17)?;
        let size = u64_at(j + 25)?;
        let c = j + 9 + 8 + 8 + 8 + 4;
        let name_len = u32::from_le_bytes(bytes.get(c..c + 4)?.try_into().ok()?) as usize;
        let name = bytes.get(c + 4..c + 4 + name_len.min(8))?;
        let records = u64_at(c + 4 + name_len)?;
        let header = (8 + 8 + 8 + 4 + 4 + name_len + 8) as u64;
        Some(
            start <= end_time
                && size <= MAX_CHUNK_BYTES
                && matches!(name, b"" | b"zstd" | b"lz4")
                && name_len <= 4
                && records.checked_add(header) == Some(len)
                && (j as u64 + 9).checked_add(len)? <= bytes.len() as u64,
        )
    };
    check().unwrap_or(false)
}

/// Reads every chunk the summary indexes, in file order, skipping those that do not decode;
/// returns what was gathered and a description of the chunks skipped.
fn read_by_chunk_index(
    path: &Path,
    bytes: &[u8],
    summary: &mcap::Summary,
    insane: &[usize],
) -> Result<(Parts, String), RecordError> {
    let mut parts = Parts::default();
    let mut chunks: Vec<_> = summary.chunk_indexes.iter().collect();
    chunks.sort_by_key(|c| c.chunk_start_offset);
    let mut skipped = Vec::new();
    let topics: HashMap<u16, String> = summary
        .channels
        .iter()
        .map(|(id, c)| (*id, c.topic.clone()))
        .collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let sane = chunk.uncompressed_size <= MAX_CHUNK_BYTES
            && !insane.contains(&(chunk.chunk_start_offset as usize));
        if !sane {
            skipped.push(format!(
                "chunk {} of {} at byte {} (impossible size)",
                i + 1,
                chunks.len(),
                chunk.chunk_start_offset
            ));
            continue;
        }
        // Decode the whole chunk first, so a chunk that fails half-way adds nothing.
        let start = chunk.chunk_start_offset as usize;
        let end = start.saturating_add(chunk.chunk_length as usize);
        let Some(record) = bytes.get(start..end) else {
            skipped.push(format!(
                "chunk {} of {} at byte {} (past the end of the file)",
                i + 1,
                chunks.len(),
                chunk.chunk_start_offset
            ));
            continue;
        };
        match decode_record(record, &mut topics.clone()) {
            Ok(messages) => {
                for (topic, log_time, data) in messages {
                    parts.add(path, &topic, log_time, &data)?;
                }
            }
            Err(Stream::Record(err)) => return Err(err),
            Err(Stream::Mcap(err)) => skipped.push(format!(
                "chunk {} of {} at byte {} ({err})",
                i + 1,
                chunks.len(),
                chunk.chunk_start_offset
            )),
        }
    }
    Ok((parts, describe_skipped(skipped)))
}

/// Messages gathered while streaming, before frames are assembled.
#[derive(Default)]
struct Parts {
    info: Option<SessionInfo>,
    calibration: Option<CameraCalibration>,
    images: HashMap<u64, Bytes>,
    overlays: Vec<(u64, String, OverlayMsg)>,
    detections: HashMap<u64, DetectionsMsg>,
    plans: HashMap<u64, PlanSnapshot>,
    placed: Vec<PlacedDot>,
    designs: Vec<DesignMsg>,
    recorder: Option<RecorderStatsMsg>,
    bad: u64,
}

impl Parts {
    fn add(
        &mut self,
        path: &Path,
        topic: &str,
        log_time: u64,
        data: &[u8],
    ) -> Result<(), RecordError> {
        if topic == schema::TOPIC_SESSION {
            self.info = Some(parse_session(path, data)?);
            return Ok(());
        }
        if self.info.is_none() {
            // Not (yet) a Stipple file: nothing to gather; the caller reports it at the end.
            return Ok(());
        }
        let ok = match topic {
            schema::TOPIC_IMAGE => serde_json::from_slice::<CompressedImage>(data)
                .map_err(|e| e.to_string())
                .and_then(|img| {
                    base64::engine::general_purpose::STANDARD
                        .decode(img.data.as_bytes())
                        .map_err(|e| e.to_string())
                })
                .map(|jpeg| {
                    self.images.insert(log_time, Bytes::from(jpeg));
                }),
            schema::TOPIC_OVERLAY => std::str::from_utf8(data)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    serde_json::from_str::<OverlayMsg>(s)
                        .map(|o| self.overlays.push((log_time, s.to_string(), o)))
                        .map_err(|e| e.to_string())
                }),
            schema::TOPIC_DETECTIONS => serde_json::from_slice::<DetectionsMsg>(data)
                .map(|d| {
                    self.detections.insert(d.seq, d);
                })
                .map_err(|e| e.to_string()),
            schema::TOPIC_PLAN => serde_json::from_slice::<PlanSnapshot>(data)
                .map(|p| {
                    self.plans.insert(p.seq, p);
                })
                .map_err(|e| e.to_string()),
            schema::TOPIC_PLACED => serde_json::from_slice::<PlacedDot>(data)
                .map(|p| self.placed.push(p))
                .map_err(|e| e.to_string()),
            schema::TOPIC_DESIGN => serde_json::from_slice::<DesignMsg>(data)
                .map(|d| self.designs.push(d))
                .map_err(|e| e.to_string()),
            schema::TOPIC_RECORDER => serde_json::from_slice::<RecorderStatsMsg>(data)
                .map(|r| self.recorder = Some(r))
                .map_err(|e| e.to_string()),
            schema::TOPIC_CALIBRATION => serde_json::from_slice::<CameraCalibration>(data)
                .map(|c| self.calibration = Some(c))
                .map_err(|e| e.to_string()),
            // Annotations are for Foxglove; unknown topics are someone else's.
            _ => Ok(()),
        };
        if let Err(reason) = ok {
            self.bad += 1;
            tracing::warn!(file = %path.display(), topic, %reason, "skipping a message that does not parse");
        }
        Ok(())
    }

    fn into_recording(
        mut self,
        path: PathBuf,
        finished: bool,
        damage: Option<String>,
    ) -> Result<Recording, RecordError> {
        let Some(info) = self.info else {
            return Err(match damage {
                // A Stipple file killed before its first chunk looks just like this.
                Some(d) => RecordError::Empty {
                    path,
                    detail: format!(" (no session metadata; reading stopped: {d})"),
                },
                None => RecordError::NotStipple {
                    path,
                    topic: schema::TOPIC_SESSION,
                },
            });
        };
        let mut frames: Vec<RecordedFrame> = self
            .overlays
            .into_iter()
            .filter_map(|(log_time_ns, overlay_json, overlay)| {
                let jpeg = self.images.remove(&log_time_ns)?;
                let seq = overlay.seq;
                Some(RecordedFrame {
                    seq,
                    log_time_ns,
                    jpeg,
                    overlay_json,
                    overlay,
                    detections: self.detections.remove(&seq),
                    plan: self.plans.remove(&seq),
                })
            })
            .collect();
        frames.sort_by_key(|f| f.seq);
        frames.dedup_by_key(|f| f.seq);
        if frames.is_empty() {
            return Err(RecordError::Empty {
                path,
                detail: damage
                    .map(|d| format!(" (reading stopped: {d})"))
                    .unwrap_or_default(),
            });
        }
        self.designs.sort_by_key(|d| d.seq);
        self.placed.sort_by_key(|p| p.seq);
        Ok(Recording {
            path,
            info,
            calibration: self.calibration,
            frames,
            placed: self.placed,
            designs: self.designs,
            recorder: self.recorder,
            finished,
            damage,
            bad_messages: self.bad,
            metadata: BTreeMap::new(),
        })
    }
}

/// Every Metadata record of the file, read front to back (they sit between chunks, so a file
/// cut short keeps those written before the cut).
fn read_metadata(bytes: &[u8]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Ok(reader) =
        mcap::read::LinearReader::new_with_options(bytes, Options::IgnoreEndMagic.into())
    else {
        return out;
    };
    for record in reader {
        match record {
            Ok(mcap::records::Record::Metadata(m)) => {
                out.insert(m.name, m.metadata);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    out
}

/// The session message, checked for format and version before anything else is trusted.
fn parse_session(path: &Path, data: &[u8]) -> Result<SessionInfo, RecordError> {
    let bad = |reason: String| RecordError::BadMessage {
        path: path.to_path_buf(),
        topic: schema::TOPIC_SESSION.into(),
        reason,
    };
    let v: serde_json::Value = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
    if v.get("format").and_then(|f| f.as_str()) != Some("stipple") {
        return Err(RecordError::NotStipple {
            path: path.to_path_buf(),
            topic: schema::TOPIC_SESSION,
        });
    }
    let found = v
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0) as u32;
    if found != FORMAT_VERSION {
        return Err(RecordError::IncompatibleVersion {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        });
    }
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}
