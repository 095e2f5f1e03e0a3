// Recording file (.sfrec): spikeflow's own append-only record of a live run — the run's config,
// the model's identity, the unit map, every received packet's events with their arrival times and
// every published prediction with its timing — so that `spikeflow replay` can re-run a session
// exactly as it arrived and `spikeflow eval` can score it. Byte layout: replay/RECORDING_FORMAT.md.
// Written by the pipeline's recorder tap (one owner thread); read offline.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/byte_io.h"
#include "core/event_batch.h"
#include "core/prediction.h"
#include "core/unit_map.h"

namespace spikeflow::replay {

enum class RecordType : uint32_t {
  kConfig = 1,        ///< UTF-8 text of the run config
  kModel = 2,         ///< decoder description + checkpoint identity string
  kUnits = 3,         ///< the unit map, model order
  kEvents = 4,        ///< one received packet: arrival_host_ns, device_time_ns, events
  kPrediction = 5,    ///< one core::Prediction with all timing fields (before epochs: read only)
  kPredictionV2 = 7,  ///< the same plus chunk_index and epoch (what the writer writes)
  kEnd = 6,           ///< clean close, with the writer's summary counters
};

/// Counters the writer keeps; the END record carries the record counts as they were at close.
struct RecordingCounters {
  uint64_t event_records = 0;       ///< EVENTS records accepted (buffered or written)
  uint64_t events = 0;              ///< spike events in them
  uint64_t prediction_records = 0;  ///< PREDICTION records accepted
  uint64_t records = 0;             ///< all records accepted, END excluded
  uint64_t bytes_written = 0;       ///< bytes the OS accepted (header included)
  uint64_t records_dropped = 0;     ///< records lost to I/O errors (never reach the file)
  uint64_t io_errors = 0;           ///< failed write / fsync / close calls
};

/// Appends records to a recording file. Thread contract: one owner thread calls everything;
/// not thread-safe. Only open() throws. Every write_* is noexcept and allocation-free (it copies
/// the record into a fixed buffer; a record that does not fit first flushes the buffer, and one
/// larger than the whole buffer is written straight through). After the first I/O error the
/// writer stops writing (a torn record in the middle of the file would hide every later one):
/// later records are counted in records_dropped, ok() turns false and error() says what failed.
class RecordingWriter {
 public:
  static constexpr size_t kDefaultBufferBytes = size_t{1} << 20;

  explicit RecordingWriter(size_t buffer_bytes = kDefaultBufferBytes);
  ~RecordingWriter();  ///< flushes and closes WITHOUT an END record: the file reads as unclean
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  /// Creates (or truncates) `path` and buffers the file header (written by the first flush).
  /// Throws std::runtime_error naming the file when it cannot be created, or when already open.
  void open(const std::string& path);

  bool write_config(const std::string& config_text) noexcept;
  /// description: human-readable decoder description; identity: checkpoint identity (e.g. its
  /// SHA-256 in hex) so a replay can check it runs the same model.
  bool write_model(const std::string& description, const std::string& identity) noexcept;
  bool write_units(const std::vector<core::UnitKey>& units) noexcept;
  bool write_events(const core::EventBatch& batch) noexcept;
  bool write_prediction(const core::Prediction& prediction) noexcept;

  /// Hands the buffered bytes to the OS (write(2), no fsync). The owner calls it periodically
  /// (e.g. every 100 ms) so that a crash loses at most that much. Returns ok().
  bool flush() noexcept;
  /// Writes the END record, flushes, fsyncs and closes. Returns ok(); no-op (true) when not open.
  bool close() noexcept;

  bool is_open() const noexcept { return fd_ >= 0; }
  /// False once any I/O call failed.
  bool ok() const noexcept { return counters_.io_errors == 0; }
  /// The first failure ("<file>: write failed: <strerror>"), empty while ok().
  const std::string& error() const noexcept { return error_; }
  const RecordingCounters& counters() const noexcept { return counters_; }
  const std::string& path() const noexcept { return path_; }

 private:
  // Reserves a frame for a payload of `payload_bytes`; returns a writer over exactly that payload,
  // or nullopt when the record is dropped. commit() then checks the payload was filled and adds
  // the CRC.
  std::optional<core::SpanWriter> begin_record(RecordType type, size_t payload_bytes) noexcept;
  bool commit(const core::SpanWriter& payload) noexcept;
  bool write_fd(const uint8_t* data, size_t n) noexcept;
  void fail(const char* what, int err) noexcept;
  bool finish_fd(bool write_end) noexcept;

  std::vector<uint8_t> buffer_;  // fixed capacity, allocated once
  size_t used_ = 0;
  size_t record_begin_ = 0;
  size_t pending_bytes_ = 0;       // frame size of the record between begin_record and commit
  uint64_t records_buffered_ = 0;  // records in buffer_ not yet handed to the OS
  std::vector<uint8_t> oversize_;  // a record larger than buffer_ (allocated on demand)
  bool in_oversize_ = false;
  int fd_ = -1;
  std::string path_;
  std::string error_;
  RecordingCounters counters_;
};

/// Everything a recording holds, plus what reading it found.
struct Recording {
  uint32_t version = 0;
  int64_t created_unix_ns = 0;       ///< wall clock (system_clock) when the file was opened
  int64_t created_host_ns = 0;       ///< host_now_ns() at the same moment (relates timing fields)
  std::string config;                ///< last CONFIG record (empty if none)
  std::string model;                 ///< last MODEL record's description
  std::string model_identity;        ///< ... and its checkpoint identity
  std::vector<core::UnitKey> units;  ///< last UNITS record
  std::vector<core::EventBatch> batches;
  std::vector<core::Prediction> predictions;
  bool clean_end = false;          ///< an END record is the last record and nothing follows it
  RecordingCounters end_counters;  ///< END's counters (valid when clean_end)
  uint64_t records = 0;            ///< complete, CRC-valid records read (END included)
  uint64_t unknown_records = 0;    ///< valid records of types this build does not know (skipped)
  uint64_t bytes_read = 0;         ///< up to the end of the last valid record
  uint64_t bytes_lost =
      0;  ///< file bytes after that (a torn tail or everything after a corrupt record)
  bool truncated = false;  ///< the file ends inside a record (e.g. the writer was killed)
  bool corrupt = false;    ///< a record before the end failed its checks; reading stopped there
  std::string problem;     ///< why reading stopped early, naming the file and byte offset
};

/// Reads every complete, CRC-valid record from the start up to the first that is not; never
/// throws for damage after the header (see Recording::truncated / corrupt / problem).
/// Throws std::runtime_error naming the file when it is missing, is not a recording (magic),
/// has an unsupported version or a damaged header.
Recording read_recording(const std::string& path);

}  // namespace spikeflow::replay
