package fhir

import "unsafe"

// aliasThreshold: values at least this long (in practice base64 attachment
// content) share memory with the input instead of being copied, which keeps
// validation of a 5 MB message to one pass and no 5 MB allocation.
// Consequence, documented on Decode/Parse: do not modify the input while the
// tree is in use; copy (strings.Clone) any value kept beyond that.
const aliasThreshold = 64 << 10

func bytesToString(b []byte) string {
	if len(b) < aliasThreshold {
		return string(b)
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
