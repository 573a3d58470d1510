// Package wire holds Kraft's binary formats: connection handshake, frames,
// Raft peer messages, client messages, and the entry record that is both
// stored in the WAL and carried by AppendEntries.
//
// All integers are little-endian. Encoders append to a caller's buffer
// (Append*(dst, …) []byte) and never allocate when dst has room. Decoders
// fill a caller's struct with views into their input (no copies, no
// allocations) and reject malformed input with an *Error wrapping one of the
// Err* sentinels; they never panic. Views are valid only while the input
// buffer is: a network reader that recycles its buffer must copy what it keeps.
//
// # Handshake
//
// Each side of a connection sends a Hello first; the acceptor checks the
// dialer's (magic, version, role, cluster ID, node ID) and either answers with
// its own Hello or sends an Error frame and closes.
//
//	0       4         6      7      8              16             24             32
//	+-------+---------+------+------+--------------+--------------+--------------+
//	| "KRFT"| version | role | rsvd | capabilities |  cluster ID  |   node ID    |
//	+-------+---------+------+------+--------------+--------------+--------------+
//	  u32     u16       u8     u8=0    u64 bit set     u64            u64 (0 = client)
//
// A peer Hello (role 1) continues with the sender's advertised addresses,
// so nodes learn each other's peer, client and admin addresses from the
// connections they accept (a client Hello ends at byte 32):
//
//	32        34
//	+---------+-----+---------+-----+-----------+-----+----------+
//	| extLen  | len | peer    | len | client    | len | admin    |
//	+---------+-----+---------+-----+-----------+-----+----------+
//	  u16       u8    host:port u8    host:port   u8    host:port
//
// # Frames
//
// After the handshake a connection carries frames:
//
//	0        4      5
//	+--------+------+------------------------+
//	| length | type | body (length-1 bytes)  |
//	+--------+------+------------------------+
//	  u32      u8
//
// length counts the type byte and the body, not itself. A reader checks it
// against the maximum frame size (DefaultMaxFrameSize, configurable) as soon
// as the 4 length bytes arrive, before buffering or allocating the body.
// Types: 1–13 Raft messages, 32 ClientRequest, 33 ClientResponse, 63 Error.
//
// # Entry record
//
// One log entry, byte for byte as the WAL stores it and AppendEntries
// carries it; the follower verifies the checksum and appends the bytes as
// they came, so a bit flipped on disk or on the way is caught end to end.
//
//	0        4      5       6       8        16       24          24+n       32+n
//	+--------+------+-------+-------+--------+--------+-----------+----------+
//	| length | type | flags | rsvd  | index  |  term  |  payload  | xxhash64 |
//	+--------+------+-------+-------+--------+--------+-----------+----------+
//	  u32      u8     u8=0    u16=0   u64      u64      n bytes     u64
//
// length is the whole record (32+n), so a zero length (a zero-filled,
// preallocated WAL region) can never be a record, and neither can type 0.
// The checksum covers bytes [0, 24+n). Types: 1 normal, 2 no-op, 3 config
// change (single step), 4 config change (enter/leave joint consensus).
//
// # Raft messages
//
// Every Raft message body starts with a common header, then the u64 fields
// of its type in the order of the table, then a variable tail for two types:
//
//	0         8         16        24    25
//	+---------+---------+---------+-----+------------------+---------------+
//	|  from   |   to    |  term   |flags| u64 fields (table)| tail         |
//	+---------+---------+---------+-----+------------------+---------------+
//	flags: bit 0 reject, bit 1 transfer (vote caused by TimeoutNow),
//	       bit 2 done (last snapshot chunk), bit 3 compressed (Append
//	       only, below); other bits must be zero.
//
//	type              #   u64 fields after the header        tail
//	Append            1   index=prevLogIndex logTerm=prev    count u32, entry records
//	                      commit
//	AppendResp        2   index (match, or rejected prev)    -
//	                      hint (conflict index) logTerm (conflict term)
//	Vote              3   index=lastLogIndex logTerm=last    -
//	VoteResp          4   -                                  -
//	PreVote           5   index=lastLogIndex logTerm=last    -
//	PreVoteResp       6   -                                  -
//	Snapshot          7   index logTerm offset size          metaLen u32, meta, chunk data
//	SnapshotResp      8   index offset (bytes stored)        -
//	TimeoutNow        9   -                                  -
//	Heartbeat        10   commit context                     -
//	HeartbeatResp    11   index context                      -
//	ReadIndex        12   context                            -
//	ReadIndexResp    13   index context                      -
//
// The decoder checks that fixed parts are present, that nothing trails them,
// that Append's records verify, are consecutive from prevLogIndex+1 and match
// the count, and that a Snapshot chunk lies inside the snapshot's size.
// AppendMessageHead writes an Append or Snapshot frame without its bulk
// tail, so a sender can writev the records straight from the WAL mapping.
//
// # Compressed Append
//
// Between two nodes whose Hellos both carry CapCompressS2 (capability bit
// 0), an Append whose records block is at least DefaultCompressMinBytes
// (4 KiB) may travel with flag bit 3 set and the records as one S2 block
// (github.com/klauspost/compress/s2 block format), when that block is
// smaller than the records; otherwise it is sent plain:
//
//	0        25                   49      53
//	+--------+--------------------+-------+---------------+------------------+
//	| header | index logTerm      | count | inflated len  | S2 block data    |
//	| flags  | commit             |       | uvarint       |                  |
//	| bit 3  |                    |       |               |                  |
//	+--------+--------------------+-------+---------------+------------------+
//	                                u32     └──── one S2 block (s2.Encode) ───┘
//
// The receiver reads the inflated length first and refuses (before
// allocating) a block that would inflate past what a plain Append frame of
// the maximum frame size could carry, or that is too short for count
// records; then it inflates into a buffer its Message keeps, and checks the
// records exactly as a plain Append's (checksums, indexes from prev+1,
// count). The checksums are those of the records as stored, so integrity
// stays end to end through compression. Any build decodes both forms,
// whatever it advertised.
//
// # Client messages
//
//	ClientRequest (32)
//	0          8      16             24   25     26      28       32         36          40
//	+----------+------+--------------+----+------+-------+--------+----------+-----------+-----+-------+--------+
//	| clientID | seq  | firstUnacked | op | cons | flags | keyLen | valueLen | expectLen | key | value | expect |
//	+----------+------+--------------+----+------+-------+--------+----------+-----------+-----+-------+--------+
//	  u64        u64    u64            u8   u8     u16     u32      u32        u32
//	op: 1 put, 2 get, 3 delete, 4 cas. cons (reads): 0 linearizable,
//	1 lease, 2 stale. flags: bit 0 new session. firstUnacked <= seq. The
//	three lengths must exactly fill the rest.
//
//	ClientResponse (33)
//	0      8      9    10      12       20     28         36         40       44
//	+------+------+----+-------+--------+------+----------+----------+--------+------------+-------+-------+
//	| seq  |status|rsvd|addrLen| index  | term | leaderID | valueLen | errLen | leaderAddr | value | error |
//	+------+------+----+-------+--------+------+----------+----------+--------+------------+-------+-------+
//	  u64    u8     u8   u16     u64      u64    u64        u32        u32
//	status: 0 OK, 1 not leader (redirect to leaderID/leaderAddr), 2 timeout
//	(outcome unknown), 3 error, 4 not found, 5 compare failed, 6 too many
//	requests, 7 no quorum, 8 session expired.
//
// Seq is the client's sequence number: the state machine applies a request
// once per (clientID, seq) and answers a retry from its session cache; on a
// pipelined connection it also pairs responses with requests. firstUnacked
// lets the server drop cached responses the client has seen; the new-session
// flag is the only way to open a session, so an expired one is reported
// (status 8) instead of silently re-applying a retried write.
//
// # Error frame
//
//	Error (63): code u16, then UTF-8 text to the end of the frame.
//
// Sent before closing a connection that is refused (wrong cluster, bad
// handshake, undecodable frame, overload), so both logs say why.
package wire
