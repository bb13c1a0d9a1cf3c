package scan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// WriteText writes one line per finding:
//
//	file:line:col: message [commit abc1234def0 2024-05-01 Author]
func WriteText(w io.Writer, fs []Finding) error {
	for _, f := range fs {
		loc := fmt.Sprintf("%s:%d", displayName(f.File), f.Line)
		if f.Column > 0 {
			loc += fmt.Sprintf(":%d", f.Column)
		}
		line := loc + ": " + f.Message()
		if f.Commit != "" {
			line += fmt.Sprintf(" [commit %.12s %s %s]", f.Commit, f.CommitTime.UTC().Format("2006-01-02"), f.Author)
		}
		if f.Status != "" {
			line += " [key " + string(f.Status) + "]"
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

func displayName(file string) string {
	if file == "-" {
		return "<stdin>"
	}
	return file
}

// WriteJSON writes {"findings": [...]}, each finding as Finding.MarshalJSON
// renders it.
func WriteJSON(w io.Writer, fs []Finding) error {
	if fs == nil {
		fs = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Findings []Finding `json:"findings"`
	}{fs})
}

// SARIF 2.1.0, the subset that code-scanning services read.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool sarifTool `json:"tool"`
		// OriginalURIBaseIDs says where %SRCROOT% is, so that relative
		// artifact URIs resolve whatever directory was scanned.
		OriginalURIBaseIDs map[string]sarifArtifact `json:"originalUriBaseIds,omitempty"`
		ColumnKind         string                   `json:"columnKind"`
		Results            []sarifResult            `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		Version        string      `json:"version,omitempty"`
		InformationURI string      `json:"informationUri,omitempty"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string         `json:"id"`
		Name                 string         `json:"name"`
		ShortDescription     sarifText      `json:"shortDescription"`
		FullDescription      sarifText      `json:"fullDescription"`
		Help                 sarifText      `json:"help"`
		DefaultConfiguration sarifRuleConf  `json:"defaultConfiguration"`
		Properties           map[string]any `json:"properties,omitempty"`
	}
	sarifRuleConf struct {
		Level string `json:"level"`
	}
	sarifText struct {
		Text string `json:"text"`
	}
	sarifResult struct {
		RuleID              string            `json:"ruleId"`
		RuleIndex           int               `json:"ruleIndex"`
		Level               string            `json:"level"`
		Message             sarifText         `json:"message"`
		Locations           []sarifLocation   `json:"locations"`
		PartialFingerprints map[string]string `json:"partialFingerprints,omitempty"`
		Properties          map[string]any    `json:"properties,omitempty"`
	}
	sarifLocation struct {
		PhysicalLocation sarifPhysical `json:"physicalLocation"`
	}
	sarifPhysical struct {
		ArtifactLocation sarifArtifact `json:"artifactLocation"`
		Region           sarifRegion   `json:"region"`
	}
	sarifArtifact struct {
		URI       string `json:"uri"`
		URIBaseID string `json:"uriBaseId,omitempty"`
	}
	// Columns are in UTF-16 code units (columnKind utf16CodeUnits,
	// SARIF's default); endColumn is the column after the secret.
	sarifRegion struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn,omitempty"`
		EndLine     int `json:"endLine,omitempty"`
		EndColumn   int `json:"endColumn,omitempty"`
	}
)

// srcRoot is the base of relative artifact URIs.
const srcRoot = "%SRCROOT%"

const sarifSchema = "https://json.schemastore.org/sarif-2.1.0.json"

var sarifRules = []sarifRule{
	{
		ID:                   string(RuleSecret),
		Name:                 "LatchkeySecretAccessKey",
		ShortDescription:     sarifText{"latchkey secret access key"},
		FullDescription:      sarifText{"A latchkey secret access key (lksk_ followed by 46 base62 characters with a valid CRC32 checksum) is in the source or its history."},
		Help:                 sarifText{"Deactivate the key now (latchkey update-access-key --access-key-id ID --status Inactive), rotate the application to a new key, then delete the leaked one. Removing the line does not help: the secret stays in the history and in every clone."},
		DefaultConfiguration: sarifRuleConf{"error"},
		Properties:           map[string]any{"tags": []string{"security", "secret"}, "precision": "very-high", "security-severity": "9.0"},
	},
	{
		ID:                   string(RuleCredentialsFile),
		Name:                 "LatchkeyCredentialsFileNotIgnored",
		ShortDescription:     sarifText{"latchkey credentials file not ignored by git"},
		FullDescription:      sarifText{"A credentials or .env file holding a latchkey secret is inside a git work tree and not ignored, so the next commit of the tree would publish it."},
		Help:                 sarifText{"Add the file to .gitignore, or keep credentials in ~/.latchkey/credentials outside the work tree."},
		DefaultConfiguration: sarifRuleConf{"error"},
		Properties:           map[string]any{"tags": []string{"security", "secret"}, "precision": "high", "security-severity": "7.0"},
	},
}

// WriteSARIF writes a SARIF 2.1.0 log with one run; version is the tool
// version. Artifact URIs are relative to root (%SRCROOT%, given in the
// run's originalUriBaseIds as a file URI), which SARIFRoot chooses for the
// paths scanned; "" means the current directory. A file outside root gets
// an absolute file URI.
//
// Regions give the secret's start and end, columns in UTF-16 code units.
// Each result has partialFingerprints.primaryLocationLineHash, by which
// code scanning tells an alert seen again from a new one: a hash and an
// occurrence counter, "hash:N", as GitHub's own. GitHub hashes the text
// of the line; here the hash is of the rule, the file and the secret's
// digest (the line holds the secret itself, and the secret is what stays
// the same while the lines around it change), and N numbers the
// occurrences of that secret in that file in line order, so that every
// location has its own.
func WriteSARIF(w io.Writer, fs []Finding, version, root string) error {
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		root = wd
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	results := make([]sarifResult, 0, len(fs))
	occurrences := map[string]int{}
	for _, f := range fs {
		idx := 0
		if f.Rule == RuleCredentialsFile {
			idx = 1
		}
		art := sarifArtifactFor(f.File, root)
		region := sarifRegion{StartLine: max(f.Line, 1)}
		if f.ColumnUTF16 > 0 && f.Len > 0 {
			region.StartColumn, region.EndLine, region.EndColumn = f.ColumnUTF16, region.StartLine, f.ColumnUTF16+f.Len
		}
		sum := sha256.Sum256([]byte(string(f.Rule) + "\x00" + art.URIBaseID + "\x00" + art.URI + "\x00" + hex.EncodeToString(f.Digest[:])))
		hash := hex.EncodeToString(sum[:8])
		occurrences[hash]++
		r := sarifResult{
			RuleID:    string(f.Rule),
			RuleIndex: idx,
			Level:     "error",
			Message:   sarifText{f.Message()},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{ArtifactLocation: art, Region: region}}},
			PartialFingerprints: map[string]string{
				"primaryLocationLineHash": fmt.Sprintf("%s:%d", hash, occurrences[hash]),
				"latchkeySecretSha256/v1": hex.EncodeToString(f.Digest[:]),
			},
		}
		props := map[string]any{}
		if f.Commit != "" {
			props["commitSha"] = f.Commit
			props["commitTime"] = f.CommitTime.UTC()
		}
		if f.AccessKeyID != "" {
			props["accessKeyId"] = f.AccessKeyID
		}
		if len(props) > 0 {
			r.Properties = props
		}
		results = append(results, r)
	}
	log := sarifLog{
		Schema:  sarifSchema,
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool: sarifTool{Driver: sarifDriver{
				Name:           "latchkey",
				Version:        version,
				InformationURI: "https://github.com/latchkey/latchkey",
				Rules:          sarifRules,
			}},
			OriginalURIBaseIDs: map[string]sarifArtifact{srcRoot: {URI: fileURI(root, true)}},
			ColumnKind:         "utf16CodeUnits",
			Results:            results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// SARIFRoot returns the directory that WriteSARIF makes artifact URIs
// relative to, for a scan of paths: the top of the git work tree that
// holds them all, since code scanning reads a relative URI as a path in
// the repository, or else the deepest directory that holds them all.
// Standard input ("-") is left out; with nothing else, it is the current
// directory.
func SARIFRoot(paths []string) (string, error) {
	var common string
	for _, p := range paths {
		if p == "-" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			abs = filepath.Dir(abs)
		}
		if common == "" {
			common = abs
		}
		for !within(abs, common) {
			common = filepath.Dir(common)
		}
	}
	if common == "" {
		return os.Getwd()
	}
	for d := common; ; d = filepath.Dir(d) {
		if isRepoRoot(d) {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return common, nil
		}
	}
}

// within reports whether path is dir or below it; both are absolute and
// clean.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// sarifArtifactFor turns a scanned path into a URI relative to root
// (%SRCROOT%), or a file URI for a path outside it.
func sarifArtifactFor(file, root string) sarifArtifact {
	if file == "-" {
		return sarifArtifact{URI: "stdin"}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return sarifArtifact{URI: (&url.URL{Path: filepath.ToSlash(file)}).String()}
	}
	if !within(abs, root) {
		return sarifArtifact{URI: fileURI(abs, false)}
	}
	rel, _ := filepath.Rel(root, abs)
	// String, unlike EscapedPath, guards a first segment with a colon.
	return sarifArtifact{URI: (&url.URL{Path: filepath.ToSlash(rel)}).String(), URIBaseID: srcRoot}
}

// fileURI is the file URI of an absolute path; a directory's ends in "/",
// as SARIF requires of a base URI.
func fileURI(abs string, dir bool) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive: file:///C:/...
	}
	if dir && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return (&url.URL{Scheme: "file", Path: p}).String()
}
