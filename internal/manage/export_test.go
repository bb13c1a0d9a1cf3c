package manage

// EnforcePageSize lets tests make EnforcePolicies read small pages.
var EnforcePageSize = &enforcePageSize
