package scan

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
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
		Tool    sarifTool     `json:"tool"`
		Results []sarifResult `json:"results"`
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
	// Columns are left out: SARIF counts them in UTF-16 code units by
	// default and the scanner counts bytes without keeping the line.
	sarifRegion struct {
		StartLine int `json:"startLine"`
	}
)

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
// version.
func WriteSARIF(w io.Writer, fs []Finding, version string) error {
	results := make([]sarifResult, 0, len(fs))
	for _, f := range fs {
		idx := 0
		if f.Rule == RuleCredentialsFile {
			idx = 1
		}
		r := sarifResult{
			RuleID:    string(f.Rule),
			RuleIndex: idx,
			Level:     "error",
			Message:   sarifText{f.Message()},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifactFor(f.File),
				Region:           sarifRegion{StartLine: max(f.Line, 1)},
			}}},
			PartialFingerprints: map[string]string{
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
			Results: results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// sarifArtifactFor turns a scanned path into a URI: relative to the source
// root (%SRCROOT%, what code scanning resolves against the repository) or,
// for an absolute path, a file URI.
func sarifArtifactFor(file string) sarifArtifact {
	if file == "-" {
		return sarifArtifact{URI: "stdin"}
	}
	p := filepath.ToSlash(filepath.Clean(file))
	if filepath.IsAbs(file) {
		return sarifArtifact{URI: (&url.URL{Scheme: "file", Path: p}).String()}
	}
	// String, unlike EscapedPath, guards a first segment with a colon.
	return sarifArtifact{URI: (&url.URL{Path: p}).String(), URIBaseID: "%SRCROOT%"}
}
