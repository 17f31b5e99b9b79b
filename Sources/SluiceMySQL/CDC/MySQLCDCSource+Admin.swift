import SluiceCore

/// `sluice cdc setup|teardown|resnapshot` for a `mysql_cdc` source. A binlog reader keeps nothing
/// on the server (no slot): setup checks the server, teardown and resnapshot only forget the
/// checkpoint (which the command does).
extension MySQLCDCSource: CDCAdministrable {
    public func missingServerSettings() async throws -> [String] {
        let c = try await MySQLConnection.connect(options.url)
        do {
            let problems = try await MySQLServerSettings.check(c, tables: options.tables)
            await c.close()
            return problems
        } catch {
            await c.close()
            throw error
        }
    }

    public func setUp() async throws -> [String] {
        let c = try await MySQLConnection.connect(options.url)
        do {
            let variables = try await MySQLServerSettings.variables(c)
            await c.close()
            var lines = [
                "\(c.server.isMariaDB ? "MariaDB" : "MySQL") \(c.server.serverVersion): binlog_format=ROW, binlog_row_image=\(variables["binlog_row_image"] ?? "?"), binlog_row_metadata=FULL",
                "nothing to create on the server: Sluice reads the binlog as replica \(serverID)",
            ]
            lines.append(MySQLServerSettings.gtidNote(variables, resume: options.resume))
            lines += MySQLServerSettings.warnings(variables, resume: options.resume).map { "warning: " + $0 }
            return lines
        } catch {
            await c.close()
            throw error
        }
    }

    public func tearDown(keepPublication: Bool) async throws -> [String] {
        ["nothing to drop on the server (a binlog reader keeps no slot)"]
    }

    public func objectsDropped(keepPublication: Bool) -> String {
        "nothing on the server (a binlog reader keeps no slot)"
    }
}
