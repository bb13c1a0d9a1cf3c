package sqlstore

// SQLiteUsageStatements are the usage flush's statements on SQLite.
var SQLiteUsageStatements = []string{sqliteUseSQL, sqliteUseNewSQL, sqliteUsageSQL, sqliteMinutesSQL, sqliteMinutesNewSQL}
