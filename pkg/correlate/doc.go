// Package correlate will link each server's tool calls to the effects they
// really caused, and judge them with rules and baselines, emitting alerts.
//
// Not built yet: it is the next step after capture and decoding (see the
// issue "Tool calls linked to their real side effects"). Today the sensor
// reports messages and effects, each carrying its server, process and time,
// which is what this package will consume.
package correlate
