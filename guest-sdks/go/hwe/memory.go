//go:build wasip1

package hwe

import "encoding/binary"

// readInput copies the step's input out of the kernel.
func readInput() []byte {
	n := extismInputLength()
	buf := make([]byte, n)
	var i uint64
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], extismInputLoadU64(i))
	}
	for ; i < n; i++ {
		buf[i] = byte(extismInputLoadU8(i))
	}
	return buf
}

// toKernel copies b into a new kernel block and returns its offset.
func toKernel(b []byte) uint64 {
	n := uint64(len(b))
	offset := extismAlloc(n)
	var i uint64
	for ; i+8 <= n; i += 8 {
		extismStoreU64(offset+i, binary.LittleEndian.Uint64(b[i:]))
	}
	for ; i < n; i++ {
		extismStoreU8(offset+i, uint32(b[i]))
	}
	return offset
}

// fromKernel copies the kernel block at offset into guest memory.
func fromKernel(offset uint64) []byte {
	n := extismLength(offset)
	buf := make([]byte, n)
	var i uint64
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], extismLoadU64(offset+i))
	}
	for ; i < n; i++ {
		buf[i] = byte(extismLoadU8(offset + i))
	}
	return buf
}
