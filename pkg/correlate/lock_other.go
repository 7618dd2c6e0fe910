//go:build !unix

package correlate

// lockFile is a no-op where flock(2) is missing: the sensor runs on Linux;
// the correlator builds elsewhere for its tests.
func lockFile(string) (func(), error) { return func() {}, nil }
