package cli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/auditkey"
	"github.com/spf13/cobra"
)

// errTampered makes `latchkey audit verify` exit with status 1 once its
// findings are printed; ExitCode prints nothing more for it.
var errTampered = errors.New("latchkey audit verify: the audit log was tampered with")

// exportLine is one line of an audit export: exactly one field is set.
type exportLine struct {
	Event      *latchkey.AuditEvent      `json:"audit_event,omitempty"`
	Checkpoint *latchkey.AuditCheckpoint `json:"audit_checkpoint,omitempty"`
	Head       *latchkey.AuditChainHead  `json:"audit_chain_head,omitempty"`
	PublicKey  string                    `json:"audit_public_key,omitempty"`
}

// chain is what is known of one account's audit chain.
type chain struct {
	events      []*latchkey.AuditEvent
	checkpoints []*latchkey.AuditCheckpoint
	head        *latchkey.AuditChainHead
}

func (s *state) newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Export and verify the tamper-evident audit log; make its signing key",
		Long: `The audit log is a chain per account: each event holds the hash of the one
before it, and the server signs the chain's head now and then (serve
--audit-signing-key). These commands export the chain, verify it (through the
API or in an export, offline) and make a signing key.

EXAMPLES
  latchkey audit keygen --out /etc/latchkey/audit-signing.key
  latchkey audit export --all-accounts > audit.jsonl
  latchkey audit verify --file audit.jsonl --public-key /etc/latchkey/audit-signing.key.pub`,
		Args: noArgs,
	}
	cmd.AddCommand(s.newAuditKeygenCmd(), s.newAuditExportCmd(), s.newAuditVerifyCmd())
	return cmd
}

func (s *state) newAuditKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Make an Ed25519 key that signs audit checkpoints",
		Long: `Make an Ed25519 key pair for serve --audit-signing-key: the private key goes
to FILE (PKCS8 PEM, mode 0600; an existing file is not overwritten), the
public key to FILE.pub (PKIX PEM), for audit verify --public-key. Keep the
private key away from the database: whoever holds both can rewrite the log.

EXAMPLES
  latchkey audit keygen --out /etc/latchkey/audit-signing.key`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required("out", out, "/etc/latchkey/audit-signing.key"); err != nil {
				return err
			}
			pub, err := auditkey.Generate(out)
			if err != nil {
				return fmt.Errorf("--out %s: %w", out, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote the private key to %s and the public key (key ID %s) to %s.pub.\n",
				out, latchkey.AuditKeyID(pub), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the private key to (the public key goes to FILE.pub)")
	return cmd
}

func (s *state) newAuditExportCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the audit chain, its head and signed checkpoints as JSON lines",
		Long: `Write an account's audit chain to standard output as JSON lines, for a copy
kept elsewhere that audit verify --file checks offline. Each line is one of
  {"audit_event": {"id", "time", "account", ..., "seq", "prev_hash", "hash"}}
  {"audit_checkpoint": {"account", "seq", "hash", "time", "key_id", "signature"}}
  {"audit_chain_head": {"account", "seq", "hash"}}
  {"audit_public_key": "BASE64"}   (the server's, for information: verify
                                    trusts only --public-key)

EXAMPLES
  latchkey audit export > audit.jsonl
  latchkey audit export --account acme > acme-audit.jsonl
  latchkey audit export --all-accounts > audit.jsonl`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, _ *printer, cl *client.Client) error {
			w := bufio.NewWriter(cmd.OutOrStdout())
			enc := json.NewEncoder(w)
			var pubWritten bool
			err := s.eachChain(cmd.Context(), cl, all, func(acc string, c *chain, pub string) error {
				if pub != "" && !pubWritten {
					pubWritten = true
					if err := enc.Encode(exportLine{PublicKey: pub}); err != nil {
						return err
					}
				}
				for _, e := range c.events {
					if err := enc.Encode(exportLine{Event: e}); err != nil {
						return err
					}
				}
				for _, cp := range c.checkpoints {
					if err := enc.Encode(exportLine{Checkpoint: cp}); err != nil {
						return err
					}
				}
				return enc.Encode(exportLine{Head: c.head})
			})
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		}),
	}
	cmd.Flags().BoolVar(&all, "all-accounts", false, "every account (operators only)")
	return cmd
}

func (s *state) newAuditVerifyCmd() *cobra.Command {
	var (
		file, pubFile string
		all           bool
	)
	cmd := &cobra.Command{
		Use:   "verify [--file EXPORT] [--public-key FILE]",
		Short: "Prove the audit log complete and unchanged, or name the first tampered event",
		Long: `Check an account's audit chain, through the API or in an export (--file, no
server needed): every seq from 1 to the head is there once, each event's hash
matches its fields and links to the one before, and the signed checkpoints
match the chain. Each finding names the event:
  event seq 42 altered (hash mismatch)
  event seq 43 missing
  events 44/45 re-ordered
  log truncated after seq 47 (signed checkpoint at seq 50)
In an export, a line repeated whole counts once: the copy an audit sink
(serve --audit-sink) keeps may hold an event twice, as delivery is at least
once. The exit status is 1 when anything is found, 0 when the log is clean.

Checkpoints are trusted only under --public-key (the FILE.pub of audit
keygen, or the base64 key). Through the API without it, they are checked
against the key the server serves, which proves less: whoever controls the
server controls that answer. Without a key at all, only the hashes are
checked, and a rewrite that recomputes them is not detected.

EXAMPLES
  latchkey audit verify --public-key /etc/latchkey/audit-signing.key.pub
  latchkey audit verify --all-accounts
  latchkey audit verify --file audit.jsonl --public-key audit-signing.key.pub`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pinned ed25519.PublicKey
			if pubFile != "" {
				var err error
				if pinned, err = auditkey.ReadPublic(pubFile); err != nil {
					return UsageErrorf("--public-key: %v", err)
				}
			}
			out := cmd.OutOrStdout()
			var bad bool
			check := func(acc string, c *chain, served string) error {
				pub, how := pinned, "--public-key"
				if pub == nil && served != "" {
					if k, err := base64.StdEncoding.DecodeString(served); err == nil && len(k) == ed25519.PublicKeySize {
						pub, how = k, "the server's key"
					}
				}
				probs := latchkey.VerifyAuditChain(acc, c.events, c.checkpoints, c.head, pub)
				trust := "checkpoints not checked: no public key"
				if pub != nil {
					trust = fmt.Sprintf("checkpoints signed by %s %s", how, latchkey.AuditKeyID(pub))
				}
				if n := len(c.checkpoints); n > 0 && pub != nil {
					newest := c.checkpoints[0]
					for _, cp := range c.checkpoints {
						if cp.Seq > newest.Seq {
							newest = cp
						}
					}
					trust += fmt.Sprintf(", newest at seq %d, %s", newest.Seq, newest.Time.UTC().Format(time.RFC3339))
				}
				fmt.Fprintf(out, "account %s: %d events, %d checkpoints (%s): ", acc, len(c.events), len(c.checkpoints), trust)
				if len(probs) == 0 {
					fmt.Fprintln(out, "clean")
					return nil
				}
				bad = true
				fmt.Fprintf(out, "%d problems\n", len(probs))
				for i, p := range probs {
					if i == 50 {
						fmt.Fprintf(out, "  ... and %d more\n", len(probs)-i)
						break
					}
					fmt.Fprintf(out, "  %s\n", p.Message)
				}
				return nil
			}
			if file != "" {
				if all {
					return UsageErrorf("--all-accounts: an export is verified whole; give one or the other")
				}
				chains, order, err := readExport(file)
				if err != nil {
					return err
				}
				for _, acc := range order {
					if err := check(acc, chains[acc], ""); err != nil {
						return err
					}
				}
			} else {
				cl, err := s.client(cmd)
				if err != nil {
					return err
				}
				if err := s.eachChain(cmd.Context(), cl, all, check); err != nil {
					return err
				}
			}
			if bad {
				return errTampered
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "verify this export (JSON lines from audit export) instead of asking the API")
	f.StringVar(&pubFile, "public-key", "", "the public key that signs checkpoints (PEM file from audit keygen, or base64)")
	f.BoolVar(&all, "all-accounts", false, "every account (operators only)")
	return cmd
}

// eachChain fetches the whole chain of the --account (or, with all, of
// every account) and calls fn with it and the server's public key.
func (s *state) eachChain(ctx context.Context, cl *client.Client, all bool, fn func(acc string, c *chain, pub string) error) error {
	accounts := []string{s.account}
	if all {
		accs, err := cl.ListAccounts(ctx)
		if err != nil {
			return err
		}
		accounts = accounts[:0]
		for _, a := range accs {
			accounts = append(accounts, a.Name)
		}
	}
	for _, acc := range accounts {
		c := &chain{}
		var after int64
		for {
			p, err := cl.GetAuditChain(ctx, acc, after, 1000)
			if err != nil {
				return err
			}
			acc, c.head = p.Account, p.Head
			c.events = append(c.events, p.AuditEvents...)
			if after = p.NextAfterSeq; after == 0 {
				break
			}
		}
		var pub string
		after = 0
		for {
			p, err := cl.GetAuditCheckpoints(ctx, acc, after, 1000)
			if err != nil {
				return err
			}
			pub = p.PublicKey
			c.checkpoints = append(c.checkpoints, p.Checkpoints...)
			if after = p.NextAfterSeq; after == 0 {
				break
			}
		}
		if err := fn(acc, c, pub); err != nil {
			return err
		}
	}
	return nil
}

// readExport reads an audit export into chains by account, and the
// accounts in the order they first appear.
func readExport(path string) (map[string]*chain, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, UsageErrorf("--file: %v", err)
	}
	defer f.Close()
	chains := map[string]*chain{}
	var order []string
	get := func(acc string) *chain {
		c := chains[acc]
		if c == nil {
			c = &chain{}
			chains[acc] = c
			order = append(order, acc)
		}
		return c
	}
	type seen struct {
		account string
		seq     int64
	}
	events := map[seen]*latchkey.AuditEvent{}
	dec := json.NewDecoder(f)
	for line := 1; ; line++ {
		var l exportLine
		if err := dec.Decode(&l); err == io.EOF {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("--file %s: record %d: %v", path, line, err)
		}
		switch {
		case l.Event != nil:
			// A line repeated whole is the same event sent twice (an audit
			// stream delivers at least once), not a second event at its seq.
			k := seen{l.Event.Account, l.Event.Seq}
			if prev, ok := events[k]; ok && reflect.DeepEqual(prev, l.Event) {
				continue
			}
			events[k] = l.Event
			get(l.Event.Account).events = append(get(l.Event.Account).events, l.Event)
		case l.Checkpoint != nil:
			get(l.Checkpoint.Account).checkpoints = append(get(l.Checkpoint.Account).checkpoints, l.Checkpoint)
		case l.Head != nil:
			get(l.Head.Account).head = l.Head
		}
	}
	if len(order) == 0 {
		return nil, nil, fmt.Errorf("--file %s: no audit events in it", path)
	}
	sort.Strings(order)
	return chains, order, nil
}
