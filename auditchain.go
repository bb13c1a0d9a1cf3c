package latchkey

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// The audit chain makes the audit log tamper-evident. The events of each
// account form one chain, ordered by Seq (1, 2, 3, ... with no gap); each
// event holds the Hash of the one before it (PrevHash, "" for seq 1) and its
// own Hash, AuditEventHash of its fields. A store appends to an account's
// chain under a lock on the account's chain head, so that concurrent
// writers, on any replica, cannot give two events the same Seq.
//
// The hashes alone show an edit made without recomputing them, a missing
// seq and a re-ordering; they cannot show a rewrite that recomputes every
// hash after the edited event, since SHA-256 takes no key. Signed
// checkpoints (AuditCheckpoint) pin the head of a chain at a time with the
// server's Ed25519 key, which is kept in a file and never in the database:
// after a checkpoint, no rewrite of the events up to its Seq goes unseen.

// auditHashDomain starts every hashed encoding, so that an event hash can
// never be mistaken for a hash of anything else.
const auditHashDomain = "latchkey.audit.v1"

// checkpointDomain starts every signed checkpoint message.
const checkpointDomain = "latchkey.audit-checkpoint.v1"

// AuditEventHash returns the hex SHA-256 of the canonical encoding of e
// with the given seq (the event's own Seq, except when a verifier asks
// where a moved event belongs):
//
//	"latchkey.audit.v1", account, seq, prev_hash, time, actor,
//	actor_access_key_id, source_ip, user_agent, action, target_type,
//	target, application, before, after
//
// each as an 8-byte big-endian length followed by its bytes. seq and time
// (Unix microseconds, the stored precision) are decimal ASCII; before and
// after are the JSON exactly as stored, "" when there is none (JSON null
// is none). The ID is not covered: it is the database's row number, and
// Seq is the event's place in the chain.
func AuditEventHash(e *AuditEvent, seq int64) string {
	h := sha256.New()
	var n [8]byte
	put := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put(auditHashDomain)
	put(e.Account)
	put(strconv.FormatInt(seq, 10))
	put(e.PrevHash)
	put(strconv.FormatInt(e.Time.UnixMicro(), 10))
	for _, s := range []string{e.Actor, e.ActorKeyID, e.SourceIP, e.UserAgent, e.Action, e.TargetType, e.Target, e.Application} {
		put(s)
	}
	put(auditJSON(e.Before))
	put(auditJSON(e.After))
	return hex.EncodeToString(h.Sum(nil))
}

// auditJSON is the stored form of before or after: none for empty or null.
func auditJSON(b []byte) string {
	if string(b) == "null" {
		return ""
	}
	return string(b)
}

// AuditChainHead is the last link of an account's chain: the Seq and Hash
// of its newest event.
type AuditChainHead struct {
	Account string `json:"account"`
	Seq     int64  `json:"seq"`
	Hash    string `json:"hash"`
}

// AuditCheckpoint is a signed statement that an account's chain had the
// event Seq with Hash at Time. KeyID names the signing key (AuditKeyID of
// its public key); Signature is the base64 Ed25519 signature of
// SignedMessage.
type AuditCheckpoint struct {
	Account   string    `json:"account"`
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	Signature string    `json:"signature"`
}

// SignedMessage is what the signature covers: "latchkey.audit-checkpoint.v1",
// account, seq, hash, time (Unix microseconds) and key ID, in the
// length-prefixed encoding of AuditEventHash.
func (c *AuditCheckpoint) SignedMessage() []byte {
	var out []byte
	for _, s := range []string{checkpointDomain, c.Account, strconv.FormatInt(c.Seq, 10), c.Hash,
		strconv.FormatInt(c.Time.UnixMicro(), 10), c.KeyID} {
		out = binary.BigEndian.AppendUint64(out, uint64(len(s)))
		out = append(out, s...)
	}
	return out
}

// AuditKeyID names a checkpoint signing key: the first 8 bytes of the
// SHA-256 of its public key, in hex.
func AuditKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// SignAuditCheckpoint sets c's KeyID and Signature with key.
func SignAuditCheckpoint(c *AuditCheckpoint, key ed25519.PrivateKey) {
	c.KeyID = AuditKeyID(key.Public().(ed25519.PublicKey))
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.SignedMessage()))
}

// VerifySignature reports whether c is signed by pub.
func (c *AuditCheckpoint) VerifySignature(pub ed25519.PublicKey) bool {
	if c.KeyID != AuditKeyID(pub) {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	return err == nil && ed25519.Verify(pub, c.SignedMessage(), sig)
}

// AuditProblem is one finding of VerifyAuditChain: the seq it is about and
// a sentence naming it ("event seq 42 altered (hash mismatch)").
type AuditProblem struct {
	Account string `json:"account"`
	Seq     int64  `json:"seq"`
	Message string `json:"message"`
}

func (p AuditProblem) String() string { return fmt.Sprintf("account %s: %s", p.Account, p.Message) }

// reorderWindow bounds how far from its place VerifyAuditChain looks for
// an event that was moved there.
const reorderWindow = 64

// VerifyAuditChain checks one account's chain: events (every event of the
// account, in any order), its signed checkpoints and, when known, the
// store's chain head. pub, when not nil, is the key checkpoints must be
// signed with; without it checkpoints are not trusted and only the hashes
// are checked. It returns the problems found in seq order, the first
// being the earliest place the log differs from what was written; none
// means the log is complete and unchanged up to the newest checkpoint, and
// consistent after it.
func VerifyAuditChain(account string, events []*AuditEvent, cps []*AuditCheckpoint, head *AuditChainHead, pub ed25519.PublicKey) []AuditProblem {
	var out []AuditProblem
	report := func(seq int64, format string, a ...any) {
		out = append(out, AuditProblem{Account: account, Seq: seq, Message: fmt.Sprintf(format, a...)})
	}
	evs := make([]*AuditEvent, len(events))
	copy(evs, events)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Seq < evs[j].Seq })

	// hashAt is the hash the chain has at each seq: that of the event
	// written there, wherever it now is.
	hashAt := map[int64]string{}
	moved := map[int64]bool{} // seqs already reported as re-ordered
	want, prev, linked := int64(1), "", true
	for i, e := range evs {
		if e.Seq < want {
			report(e.Seq, "event seq %d duplicated", e.Seq)
			continue
		}
		if e.Seq > want {
			if e.Seq == want+1 {
				report(want, "event seq %d missing", want)
			} else {
				report(want, "events seq %d-%d missing", want, e.Seq-1)
			}
			linked = false // what followed the gap cannot be linked
		}
		s := e.Seq
		want = s + 1
		if AuditEventHash(e, s) != e.Hash {
			// An event whose hash is right for another seq was moved.
			if j := movedHere(evs, i, s); j >= 0 {
				o := evs[j]
				if !moved[s] {
					a, b := min(s, o.Seq), max(s, o.Seq)
					report(a, "events %d/%d re-ordered", a, b)
					moved[s], moved[o.Seq] = true, true
				}
				if linked && o.PrevHash != prev {
					report(s, "event seq %d does not follow seq %d (chain link broken)", s, s-1)
				}
				hashAt[s], prev, linked = o.Hash, o.Hash, true
				continue
			}
			report(s, "event seq %d altered (hash mismatch)", s)
			hashAt[s], prev, linked = e.Hash, e.Hash, true
			continue
		}
		if linked && e.PrevHash != prev {
			report(s, "event seq %d does not follow seq %d (chain link broken)", s, s-1)
		}
		hashAt[s], prev, linked = e.Hash, e.Hash, true
	}
	last := want - 1

	if pub != nil {
		sorted := make([]*AuditCheckpoint, len(cps))
		copy(sorted, cps)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
		var good int64 // newest checkpoint that matched
		for _, c := range sorted {
			switch {
			case c.Account != account:
				continue
			case !c.VerifySignature(pub):
				report(c.Seq, "checkpoint seq %d: signature not valid for key %s", c.Seq, AuditKeyID(pub))
			case c.Seq > last:
				report(last, "log truncated after seq %d (signed checkpoint at seq %d)", last, c.Seq)
			case hashAt[c.Seq] != c.Hash:
				report(c.Seq, "events seq %d-%d rewritten (seq %d differs from its signed checkpoint)", good+1, c.Seq, c.Seq)
			default:
				good = c.Seq
			}
		}
	}
	if head != nil {
		switch {
		case head.Seq > last:
			report(last, "log truncated after seq %d (chain head at seq %d)", last, head.Seq)
		case head.Seq < last:
			report(head.Seq+1, "events after seq %d not in the chain head (inserted)", head.Seq)
		case head.Seq > 0 && hashAt[head.Seq] != head.Hash:
			report(head.Seq, "event seq %d altered (differs from the chain head)", head.Seq)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// movedHere returns the index of an event near evs[i] whose hash is right
// for seq s, or -1.
func movedHere(evs []*AuditEvent, i int, s int64) int {
	for j := max(0, i-reorderWindow); j < min(len(evs), i+reorderWindow+1); j++ {
		if j != i && evs[j].Seq != s && AuditEventHash(evs[j], s) == evs[j].Hash {
			return j
		}
	}
	return -1
}
