import HTTPTypes

extension HTTPFields {
    /// The value of the field `name`, as `self[name]` gives it (several fields of that name
    /// joined by ", "), without building the joined string for the usual single field.
    ///
    /// The subscript copies the fields into a sequence and joins a lazy map of their values on
    /// every call; the push endpoint reads five or six fields per request (about 2 µs of a
    /// single-record request's 77 in a profile; too little to show in the benchmark's totals).
    func single(_ name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            if found != nil { return self[name] }
            found = field.value
        }
        return found
    }
}
