// Blackrock Microsystems NSP / Gemini "cbPKT" packets as they arrive over UDP (the Cerebus
// protocol), restricted to what spike decoding needs. Source of every layout and constant below:
// CereLink (github.com/CerebusOSS/CereLink, protocol 4.2), src/cbproto/include/cbproto/types.h
// (cbVERSION 4.2; cbPKT_HEADER, cbPKT_HEADER_OLD, cbPKT_SPK, cbPKT_GROUP, cbPKT_SYSHEARTBEAT,
// cbPKT_SYSINFO, cbPKT_PROCINFO, cbPKTCHAN_CONFIGURATION, cbNUM_FE_CHANS, cbMAX_PNTS) and
// src/cbproto/include/cbproto/packet_translator.h (cbPKT_HEADER_311, cbPKT_HEADER_400 and the
// note that 4.x time is "ticks at 30 kHz on legacy, or nanoseconds on Gemini"); how a client
// tells the two apart: src/cbdev/src/device_session.cpp (PROCREP ident containing "gemini" ->
// ns, otherwise ticks at SYSREP sysfreq). Cross-checked against CerebusOSS/pycbsdk
// pycbsdk/cbhw/packet/header/{v311,v40}.py.
// All fields little-endian, packed (#pragma pack(1)).
//
// One UDP datagram holds several packets back to back; each is a header followed by
// dlen 32-bit words of payload (packet bytes = header bytes + 4 * dlen).
//
// Header, protocol 3.11 (CBPROTO_311; 8 bytes):
//   offset size type  field
//   0      4    u32   time   PROCTIME: system clock, ticks at 30 kHz; wraps every 39.8 h
//   4      2    u16   chid   channel id (see below)
//   6      1    u8    type   packet type; on a spike channel the unit classification
//   7      1    u8    dlen   payload length in 32-bit words
//
// Header, protocol 4.0 (16 bytes; note the unaligned dlen):
//   0      8    u64   time   PROCTIME, 64-bit (ns on Gemini; 30 kHz ticks on legacy NSPs)
//   8      2    u16   chid
//   10     1    u8    type
//   11     2    u16   dlen
//   13     1    u8    instrument
//   14     2    u16   reserved
//
// Header, protocol 4.1 and 4.2 (current; 16 bytes; type widened to 16 bits in 4.1):
//   0      8    u64   time
//   8      2    u16   chid
//   10     2    u16   type
//   12     2    u16   dlen
//   14     1    u8    instrument   0-based NSP index (cbNSP1 = 1 is instrument 0 on the wire)
//   15     1    u8    reserved
//
// Channel key: one pipeline may hear several NSPs (a Gemini hub, or two NSPs on one network)
// whose chids overlap, so SpikeEvent.channel = instrument * 65536 + chid
// (blackrock_channel_key); 3.11 has no instrument byte (instrument 0 => channel = chid).
//
// chid: 0 = sample-group (continuous) packet, type = group 1..6;
//       1..cbNUM_FE_CHANS = front-end (electrode) channel; spike packets, type = unit:
//         0 unclassified, 1..5 sorted units (cbMAXUNITS), 255 noise (UC_UNIT_NOISE);
//       higher ids below 0x8000: analog/digital/serial input and output channels;
//       bit 0x8000 set (cbPKTCHAN_CONFIGURATION) = system/configuration packet; type 0x00 is the
//         system heartbeat (cbPKT_SYSHEARTBEAT, dlen 0, every 10 ms), 0x01 the protocol monitor,
//         0x10..0x1F system reports (cbPKT_SYSINFO: u32 sysfreq first, Hz), 0x21 the processor
//         report (cbPKT_PROCINFO: u32 proc, u32 idcode, char ident[64], ...).
//
// Spike packet payload (cbPKT_SPK), after the header:
//   +0     12   f32[3] fPattern   pattern-space values
//   +12    2    i16    nPeak
//   +14    2    i16    nValley
//   +16    2*n  i16    wave[n]    waveform, n <= cbMAX_PNTS = 128 samples, implied by dlen
//   so dlen >= 4 (cbPKTDLEN_SPKSHORT). The packet time is the spike's time.
//
// Producer: Blackrock NSP / Gemini hub firmware; tests and senders via encode_blackrock_packet.
// Consumer: stages::BlackrockPacketDecoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace spikeflow::stages {

/// Wire generation of the Cerebus protocol; it fixes the header layout and the time field width.
enum class BlackrockProtocol : uint8_t {
  kV3_11,  ///< 8-byte header, 32-bit time in 30 kHz ticks
  kV4_0,   ///< 16-byte header, 64-bit time, 8-bit type, unaligned 16-bit dlen
  kV4_1,   ///< 16-byte header, 64-bit time, 16-bit type (4.1, 4.2, current)
};

constexpr size_t kBlackrockHeaderBytes311 = 8;
constexpr size_t kBlackrockHeaderBytes4 = 16;
constexpr size_t blackrock_header_bytes(BlackrockProtocol p) {
  return p == BlackrockProtocol::kV3_11 ? kBlackrockHeaderBytes311 : kBlackrockHeaderBytes4;
}

constexpr uint16_t kBlackrockConfigChannel = 0x8000;      ///< cbPKTCHAN_CONFIGURATION (a bit)
constexpr uint16_t kBlackrockTypeHeartbeat = 0x00;        ///< cbPKTTYPE_SYSHEARTBEAT
constexpr uint16_t kBlackrockTypeProtocolMonitor = 0x01;  ///< cbPKTTYPE_SYSPROTOCOLMONITOR
constexpr uint16_t kBlackrockTypeSysRep = 0x10;           ///< cbPKTTYPE_SYSREP (type & 0xF0)
constexpr uint16_t kBlackrockTypeProcRep = 0x21;          ///< cbPKTTYPE_PROCREP
constexpr size_t kBlackrockProcIdentOffset = 8;  ///< cbPKT_PROCINFO.ident, after proc, idcode
constexpr size_t kBlackrockIdentBytes = 64;      ///< cbLEN_STR_IDENT
constexpr uint16_t kBlackrockMaxGroup = 6;       ///< cbPKT_GROUP types 1..6 on chid 0

constexpr uint32_t kBlackrockDefaultFeChannels = 256;      ///< cbNUM_FE_CHANS, instrument side
constexpr uint16_t kBlackrockUnitUnclassified = 0;         ///< UC_UNIT_UNCLASSIFIED
constexpr uint16_t kBlackrockMaxUnit = 5;                  ///< cbMAXUNITS
constexpr uint16_t kBlackrockUnitNoise = 255;              ///< UC_UNIT_NOISE
constexpr size_t kBlackrockSpikeFixedBytes = 16;           ///< fPattern[3], nPeak, nValley
constexpr size_t kBlackrockMaxWaveSamples = 128;           ///< cbMAX_PNTS
constexpr int64_t kBlackrockDefaultSampleRateHz = 30'000;  ///< 3.x PROCTIME tick rate
constexpr uint16_t kBlackrockSpikeMinDlen = 4;             ///< cbPKTDLEN_SPKSHORT
constexpr uint16_t kBlackrockSpikeMaxDlen = 4 + kBlackrockMaxWaveSamples / 2;  ///< cbPKTDLEN_SPK
constexpr uint32_t kBlackrockInstrumentStride = 65536;  ///< channel key = instrument * this + chid

/// SpikeEvent.channel of (instrument, chid); see the header comment.
constexpr uint32_t blackrock_channel_key(uint8_t instrument, uint16_t chid) {
  return uint32_t{instrument} * kBlackrockInstrumentStride + chid;
}

/// One packet header, protocol-independent. Fields wider than the wire field of the chosen
/// protocol are truncated by the encoder (3.11: time to 32 bits, type and dlen to 8 bits).
struct BlackrockPacketHeader {
  uint64_t time = 0;  ///< 3.x: 30 kHz ticks; 4.x: ns (Gemini) or ticks (legacy NSP)
  uint16_t chid = 0;
  uint16_t type = 0;
  uint16_t dlen = 0;       ///< payload words; the encoder sets it from the payload it writes
  uint8_t instrument = 0;  ///< 4.x only
};

/// Appends one packet: header (dlen = ceil(payload/4)) then the payload zero-padded to a whole
/// number of 32-bit words. Used by tests and test senders.
void encode_blackrock_packet(BlackrockProtocol protocol, const BlackrockPacketHeader& header,
                             std::span<const uint8_t> payload, std::vector<uint8_t>& out);

/// Appends one spike packet (cbPKT_SPK) for channel chid with the given unit classification and
/// wave_samples zero waveform samples (wave_samples <= kBlackrockMaxWaveSamples, even for a whole
/// number of words).
void encode_blackrock_spike(BlackrockProtocol protocol, uint64_t time, uint16_t chid, uint8_t unit,
                            size_t wave_samples, std::vector<uint8_t>& out, uint8_t instrument = 0);

/// Appends one system heartbeat packet (chid 0x8000, type 0x00, dlen 0).
void encode_blackrock_heartbeat(BlackrockProtocol protocol, uint64_t time,
                                std::vector<uint8_t>& out, uint8_t instrument = 0);

}  // namespace spikeflow::stages
