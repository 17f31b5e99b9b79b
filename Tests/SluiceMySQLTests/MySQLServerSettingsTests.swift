import Testing

@testable import SluiceMySQL

/// `sluice cdc setup`'s warnings, from the variables a server reports.
@Suite struct MySQLServerSettingsTests {
    let mariaDB = ["version": "10.11.6-MariaDB-0+deb12u1-log", "gtid_strict_mode": "ON", "binlog_expire_logs_seconds": "864000"]
    let mySQL = ["version": "8.0.36", "gtid_mode": "ON", "enforce_gtid_consistency": "ON", "binlog_expire_logs_seconds": "2592000"]

    @Test func aServerReadyForFailoverHasNoWarnings() {
        #expect(MySQLServerSettings.warnings(mariaDB).isEmpty)
        #expect(MySQLServerSettings.warnings(mySQL).isEmpty)
    }

    @Test func gtidsThatCannotCarryACheckpointAreNamedWithTheFix() {
        var loose = mariaDB
        loose["gtid_strict_mode"] = "OFF"
        let m = MySQLServerSettings.warnings(loose)
        #expect(m.count == 1)
        #expect(m[0].contains("SET GLOBAL gtid_strict_mode = ON"))
        // Resuming by position, strict mode does not matter.
        #expect(MySQLServerSettings.warnings(loose, resume: .position).isEmpty)
        // MySQL resumes by position whatever gtid_mode is: a note, not a warning.
        var off = mySQL
        off["gtid_mode"] = "OFF"
        #expect(MySQLServerSettings.warnings(off).isEmpty)
        #expect(MySQLServerSettings.gtidNote(off).contains("gtid_mode = OFF"))
        #expect(MySQLServerSettings.gtidNote(mariaDB).contains("failover"))
    }

    @Test func shortRetentionIsNamedWithTheFix() {
        var short = mariaDB
        short["binlog_expire_logs_seconds"] = "3600"
        let w = MySQLServerSettings.warnings(short)
        #expect(w.count == 1)
        #expect(w[0].contains("3600 s") && w[0].contains("binlog_expire_logs_seconds = 604800"))
        short["binlog_expire_logs_seconds"] = "0"
        short["expire_logs_days"] = "0.5"
        #expect(MySQLServerSettings.warnings(short).count == 1)
    }

    @Test func partialJSONUpdatesStopThePipelineBeforeAnyDataMoves() {
        var ready = mySQL
        for (k, v) in ["log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"] { ready[k] = v }
        #expect(MySQLServerSettings.problems(ready).isEmpty)
        ready["binlog_row_value_options"] = ""
        #expect(MySQLServerSettings.problems(ready).isEmpty)
        ready["binlog_row_value_options"] = "PARTIAL_JSON"
        let p = MySQLServerSettings.problems(ready)
        #expect(p.count == 1)
        #expect(p.first?.contains("SET GLOBAL binlog_row_value_options = ''") == true)
    }

    @Test func rowImagesThatLeaveColumnsOutAreAWarningAndUnknownOnesAProblem() {
        var ready = mariaDB
        for (k, v) in ["log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"] { ready[k] = v }
        #expect(MySQLServerSettings.problems(ready).isEmpty && MySQLServerSettings.warnings(ready).isEmpty)
        for image in ["MINIMAL", "noblob"] {
            ready["binlog_row_image"] = image
            #expect(MySQLServerSettings.problems(ready).isEmpty)
            let w = MySQLServerSettings.warnings(ready)
            #expect(w.count == 1)
            #expect(w.first?.contains("binlog_row_image is \(image)") == true && w.first?.contains("an insert that leaves a column to its default") == true)
        }
        ready["binlog_row_image"] = "PARTIAL"
        #expect(MySQLServerSettings.problems(ready).first?.contains("SET GLOBAL binlog_row_image = 'FULL'") == true)
    }
}
