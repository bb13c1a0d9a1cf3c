package manage

// EnforcePageSize lets tests make EnforcePolicies read small pages.
var EnforcePageSize = &enforcePageSize

// EnforceEveryKey lets tests make EnforcePolicies read every key, not
// only the policy candidates.
var EnforceEveryKey = &enforceEveryKey
