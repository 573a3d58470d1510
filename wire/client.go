package wire

import (
	"encoding/binary"
	"strconv"
)

// Op is a client operation on the key-value state machine.
type Op uint8

const (
	OpInvalid Op = 0
	OpPut     Op = 1
	OpGet     Op = 2
	OpDelete  Op = 3
	OpCAS     Op = 4 // compare-and-swap: set Value if the current value equals Expect
	maxOp     Op = 4
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpGet:
		return "get"
	case OpDelete:
		return "delete"
	case OpCAS:
		return "cas"
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Consistency is the guarantee a read asks for.
type Consistency uint8

const (
	// ReadLinearizable confirms leadership with a heartbeat round
	// (ReadIndex) before reading: never stale.
	ReadLinearizable Consistency = 0
	// ReadLease trusts the leader's lease (requires check-quorum and bounded
	// clock drift): linearizable unless clocks misbehave.
	ReadLease Consistency = 1
	// ReadStale reads the local state machine of whichever node answers.
	ReadStale      Consistency = 2
	maxConsistency Consistency = 2
)

func (c Consistency) String() string {
	switch c {
	case ReadLinearizable:
		return "linearizable"
	case ReadLease:
		return "lease"
	case ReadStale:
		return "stale"
	}
	return "Consistency(" + strconv.Itoa(int(c)) + ")"
}

// ClientRequest is one operation. Key, Value and Expect alias the decoded
// frame.
type ClientRequest struct {
	ClientID uint64
	// Seq numbers the client's requests; a retry reuses it so the state
	// machine applies the request once (sessions, Raft §6.3). It is also
	// the correlation ID of the response on a pipelined connection.
	Seq uint64
	// FirstUnacked is the lowest Seq this client still waits for: every
	// request below it has been answered, so the server may forget those
	// responses. FirstUnacked <= Seq.
	FirstUnacked uint64
	// NewSession marks the client's first request (and its retries): only
	// such a request may open a session. A request for an unknown session
	// without it gets StatusSessionExpired, so a session that expired is
	// never silently reopened under a retried write.
	NewSession  bool
	Op          Op
	Consistency Consistency // reads only
	Key         []byte
	Value       []byte // put, cas
	Expect      []byte // cas
}

// clientRequestFixed: clientID u64, seq u64, firstUnacked u64, op u8,
// consistency u8, flags u16, keyLen u32, valueLen u32, expectLen u32.
const clientRequestFixed = 40

const (
	reqFlagNewSession = 1 << 0
	knownReqFlags     = reqFlagNewSession
)

// AppendClientRequest appends r as one complete frame.
func AppendClientRequest(dst []byte, r *ClientRequest) []byte {
	dst, start := beginFrame(dst, MsgClientRequest)
	dst = binary.LittleEndian.AppendUint64(dst, r.ClientID)
	dst = binary.LittleEndian.AppendUint64(dst, r.Seq)
	dst = binary.LittleEndian.AppendUint64(dst, r.FirstUnacked)
	var flags uint16
	if r.NewSession {
		flags |= reqFlagNewSession
	}
	dst = append(dst, byte(r.Op), byte(r.Consistency))
	dst = binary.LittleEndian.AppendUint16(dst, flags)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Key)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Value)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Expect)))
	dst = append(dst, r.Key...)
	dst = append(dst, r.Value...)
	dst = append(dst, r.Expect...)
	return endFrame(dst, start)
}

// DecodeClientRequest decodes an MsgClientRequest body into r without
// allocating.
func DecodeClientRequest(body []byte, r *ClientRequest) error {
	if len(body) < clientRequestFixed {
		return errorf(ErrTruncated, 0, "ClientRequest needs %d bytes, have %d", clientRequestFixed, len(body))
	}
	op, cons := Op(body[24]), Consistency(body[25])
	if op == OpInvalid || op > maxOp {
		return errorf(ErrUnknownType, 24, "client op %d", body[24])
	}
	if cons > maxConsistency {
		return errorf(ErrMalformed, 25, "consistency level %d", body[25])
	}
	flags := binary.LittleEndian.Uint16(body[26:])
	if flags&^knownReqFlags != 0 {
		return errorf(ErrMalformed, 26, "unknown request flags %#04x", flags)
	}
	seq, firstUnacked := binary.LittleEndian.Uint64(body[8:]), binary.LittleEndian.Uint64(body[16:])
	if firstUnacked > seq {
		return errorf(ErrMalformed, 16, "first unacked seq %d above seq %d", firstUnacked, seq)
	}
	var lens [3]int
	if err := readLens(body, 28, lens[:]); err != nil {
		return err
	}
	off := clientRequestFixed
	*r = ClientRequest{
		ClientID:     binary.LittleEndian.Uint64(body[0:]),
		Seq:          seq,
		FirstUnacked: firstUnacked,
		NewSession:   flags&reqFlagNewSession != 0,
		Op:           op,
		Consistency:  cons,
		Key:          body[off : off+lens[0]],
		Value:        body[off+lens[0] : off+lens[0]+lens[1]],
		Expect:       body[off+lens[0]+lens[1] : off+lens[0]+lens[1]+lens[2]],
	}
	return nil
}

// readLens reads len(dst) u32 lengths at body[at:] and checks that the
// sections they describe exactly fill the rest of body (which starts right
// after the lengths). Sums are taken in uint64 so lying lengths cannot wrap.
func readLens(body []byte, at int, dst []int) error {
	var total uint64
	for i := range dst {
		l := binary.LittleEndian.Uint32(body[at+4*i:])
		dst[i] = int(l)
		total += uint64(l)
	}
	rest := uint64(len(body) - at - 4*len(dst))
	if total != rest {
		return errorf(ErrMalformed, at, "section lengths sum to %d, %d bytes follow", total, rest)
	}
	return nil
}

// Status is the outcome of a client request.
type Status uint8

const (
	StatusOK Status = 0
	// StatusNotLeader: the node is not the leader; LeaderID and LeaderAddr
	// name the leader when known.
	StatusNotLeader Status = 1
	// StatusTimeout: the outcome is unknown (it may still commit); retry
	// with the same Seq.
	StatusTimeout Status = 2
	// StatusError: the request failed; Error says why.
	StatusError Status = 3
	// StatusNotFound: get, delete or cas on a missing key.
	StatusNotFound Status = 4
	// StatusCompareFailed: cas found another value (returned in Value).
	StatusCompareFailed Status = 5
	// StatusTooManyRequests: flow control refused the request (pending
	// entries or bytes at their limit); nothing was proposed.
	StatusTooManyRequests Status = 6
	// StatusNoQuorum: the leader cannot reach a quorum.
	StatusNoQuorum Status = 7
	// StatusSessionExpired: the client's session is unknown (expired or
	// never opened); outstanding writes have unknown outcomes and the client
	// must start a new session.
	StatusSessionExpired Status = 8
	maxStatus            Status = 8
)

func (s Status) String() string {
	names := [...]string{"OK", "NotLeader", "Timeout", "Error", "NotFound", "CompareFailed", "TooManyRequests", "NoQuorum", "SessionExpired"}
	if s <= maxStatus {
		return names[s]
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// ClientResponse answers the request with the same Seq. Byte slices alias
// the decoded frame.
type ClientResponse struct {
	Seq        uint64
	Status     Status
	Index      uint64 // log index at which a write was applied, or a read was served
	Term       uint64
	LeaderID   uint64 // 0 when unknown
	LeaderAddr []byte // client address of the leader, for redirects
	Value      []byte
	Error      []byte // human-readable error text
}

// clientResponseFixed: seq u64, status u8, reserved u8, leaderAddrLen u16,
// index u64, term u64, leaderID u64, valueLen u32, errorLen u32.
const clientResponseFixed = 44

// AppendClientResponse appends r as one complete frame.
func AppendClientResponse(dst []byte, r *ClientResponse) []byte {
	if len(r.LeaderAddr) > 0xffff {
		panic("kraft: BUG: leader address longer than 65535 bytes")
	}
	dst, start := beginFrame(dst, MsgClientResponse)
	dst = binary.LittleEndian.AppendUint64(dst, r.Seq)
	dst = append(dst, byte(r.Status), 0)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(r.LeaderAddr)))
	dst = binary.LittleEndian.AppendUint64(dst, r.Index)
	dst = binary.LittleEndian.AppendUint64(dst, r.Term)
	dst = binary.LittleEndian.AppendUint64(dst, r.LeaderID)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Value)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Error)))
	dst = append(dst, r.LeaderAddr...)
	dst = append(dst, r.Value...)
	dst = append(dst, r.Error...)
	return endFrame(dst, start)
}

// DecodeClientResponse decodes an MsgClientResponse body into r without
// allocating.
func DecodeClientResponse(body []byte, r *ClientResponse) error {
	if len(body) < clientResponseFixed {
		return errorf(ErrTruncated, 0, "ClientResponse needs %d bytes, have %d", clientResponseFixed, len(body))
	}
	st := Status(body[8])
	if st > maxStatus {
		return errorf(ErrUnknownType, 8, "status %d", body[8])
	}
	if body[9] != 0 {
		return errorf(ErrMalformed, 9, "reserved byte is not zero")
	}
	addrLen := int(binary.LittleEndian.Uint16(body[10:]))
	valLen := uint64(binary.LittleEndian.Uint32(body[36:]))
	errLen := uint64(binary.LittleEndian.Uint32(body[40:]))
	if rest := uint64(len(body) - clientResponseFixed); uint64(addrLen)+valLen+errLen != rest {
		return errorf(ErrMalformed, 10, "section lengths %d+%d+%d, %d bytes follow", addrLen, valLen, errLen, rest)
	}
	off := clientResponseFixed
	*r = ClientResponse{
		Seq:        binary.LittleEndian.Uint64(body[0:]),
		Status:     st,
		Index:      binary.LittleEndian.Uint64(body[12:]),
		Term:       binary.LittleEndian.Uint64(body[20:]),
		LeaderID:   binary.LittleEndian.Uint64(body[28:]),
		LeaderAddr: body[off : off+addrLen],
		Value:      body[off+addrLen : off+addrLen+int(valLen)],
		Error:      body[off+addrLen+int(valLen):],
	}
	return nil
}
