package wire

import (
	"fmt"
	"unsafe"
)

const (
	effectFixedSize = int(unsafe.Sizeof(EffectFixed{}))
	chunkHeaderSize = int(unsafe.Sizeof(ChunkHeader{}))
	headerSize      = int(unsafe.Sizeof(Header{}))
)

// Effect is an effect record. Slots alias the buffer it was parsed from.
type Effect struct {
	EffectFixed
	Slots [4][]byte
}

// Chunk is a payload record. Data aliases the buffer it was parsed from.
type Chunk struct {
	ChunkHeader
	Data []byte
}

// RecordClass returns the class byte of a raw record.
func RecordClass(b []byte) (uint8, error) {
	if len(b) < headerSize {
		return 0, fmt.Errorf("record of %d bytes is shorter than a header (%d)", len(b), headerSize)
	}
	return b[0], nil
}

// RecordTime is the kernel time (boot ns) of a raw record, 0 if it is too
// short to have one.
func RecordTime(b []byte) uint64 {
	if len(b) < headerSize {
		return 0
	}
	return (*Header)(unsafe.Pointer(&b[0])).Ts
}

// ParseEffect decodes a raw effect record into e. The record layout is the
// host's (little-endian, as the objects are built for amd64).
func ParseEffect(b []byte, e *Effect) error {
	if len(b) < effectFixedSize {
		return fmt.Errorf("effect record of %d bytes is shorter than its fixed part (%d)", len(b), effectFixedSize)
	}
	e.EffectFixed = *(*EffectFixed)(unsafe.Pointer(&b[0]))
	data := b[effectFixedSize:]
	off := 0
	for i, n := range e.Slen {
		if off+int(n) > len(data) {
			return fmt.Errorf("effect slot %d (%d bytes at %d) overruns the record (%d data bytes)", i, n, off, len(data))
		}
		e.Slots[i] = data[off : off+int(n)]
		off += int(n)
	}
	return nil
}

// ParseChunk decodes a raw payload record into c.
func ParseChunk(b []byte, c *Chunk) error {
	if len(b) < chunkHeaderSize {
		return fmt.Errorf("chunk record of %d bytes is shorter than its header (%d)", len(b), chunkHeaderSize)
	}
	c.ChunkHeader = *(*ChunkHeader)(unsafe.Pointer(&b[0]))
	end := chunkHeaderSize + int(c.Len)
	if end > len(b) {
		return fmt.Errorf("chunk of %d data bytes overruns its record (%d bytes)", c.Len, len(b))
	}
	c.Data = b[chunkHeaderSize:end]
	return nil
}

// MarshalChunk builds the raw record of a chunk: for tests, fuzzing and
// replaying captures, so the decoder can be driven without a kernel.
func MarshalChunk(h ChunkHeader, data []byte) []byte {
	h.H.Class = ClassChunk
	h.Len = uint32(len(data))
	b := make([]byte, chunkHeaderSize+len(data))
	*(*ChunkHeader)(unsafe.Pointer(&b[0])) = h
	copy(b[chunkHeaderSize:], data)
	return b
}

// MarshalEffect builds the raw record of an effect with the given slots.
func MarshalEffect(f EffectFixed, slots ...[]byte) []byte {
	f.H.Class = ClassEffect
	f.Slen = [4]uint16{}
	var data []byte
	for i, s := range slots {
		if i >= len(f.Slen) {
			break
		}
		f.Slen[i] = uint16(len(s))
		data = append(data, s...)
	}
	b := make([]byte, effectFixedSize+len(data))
	*(*EffectFixed)(unsafe.Pointer(&b[0])) = f
	copy(b[effectFixedSize:], data)
	return b
}

// CommString returns a header's command name as a string.
func (h *Header) CommString() string {
	n := 0
	for n < len(h.Comm) && h.Comm[n] != 0 {
		n++
	}
	b := make([]byte, n)
	for i := 0; i < n; i++ {
		b[i] = byte(h.Comm[i])
	}
	return string(b)
}
