import Yams

/// Checks a component's options against its ``ComponentSpec`` before the component decodes them:
/// unknown keys (with a suggestion), missing required keys, values of the wrong shape and words
/// outside a choice, each located at file:line:column and key path. Values that substitute
/// `${ENV_VAR}` are checked by the component's own decoding, after substitution.
struct SpecCheck {
    let decoding: YAMLNodeDecoding

    func check(_ node: Node, against options: [OptionSpec], path: [any CodingKey]) throws {
        guard case let .mapping(mapping) = node else {
            throw decoding.error("expected a mapping of options, found \(describe(node))", at: node, path: path)
        }
        let names = options.map(\.name)
        for (key, value) in mapping {
            let name = key.string ?? "\(key)"
            guard let option = options.first(where: { $0.name == name }) else {
                throw decoding.error(NameSuggestion.unknownKey(name, known: names), at: key, path: path + [AnyKey(name)])
            }
            try check(value, is: option.type, path: path + [AnyKey(name)])
        }
        for option in options where option.required && mapping[Node(option.name)] == nil {
            throw decoding.error("missing required key '\(option.name)'", at: node, path: path)
        }
    }

    func check(_ node: Node, is type: OptionType, path: [any CodingKey]) throws {
        if isNull(node) { return }
        if case let .scalar(s) = node, s.string.contains("${") { return }
        switch type {
        case .string, .duration, .byteSize, .number:
            try expectScalar(node, type, path)
        case let .integer(range):
            try expectScalar(node, type, path)
            if let range, let value = Int(node.string ?? ""), !range.contains(value) {
                throw decoding.error("\(value) is out of range; use \(range.lowerBound)…\(range.upperBound)", at: node, path: path)
            }
        case .boolean:
            try expectScalar(node, type, path)
            guard ["true", "false", "yes", "no", "on", "off"].contains((node.string ?? "").lowercased()) else {
                throw decoding.error("expected true or false, found \(describe(node))", at: node, path: path)
            }
        case let .choice(words):
            try expectScalar(node, type, path)
            let word = node.string ?? ""
            guard words.contains(where: { $0.lowercased() == word.lowercased() }) else {
                var message = "unknown value '\(word)'"
                if let suggestion = NameSuggestion.closest(to: word, in: words) { message += "; did you mean '\(suggestion)'?" }
                let list = words.count > 1 ? words.dropLast().joined(separator: ", ") + " or " + words.last! : words.joined()
                throw decoding.error(message + "; use \(list)", at: node, path: path)
            }
        case let .list(element):
            switch node {
            case let .sequence(items):
                for (i, item) in items.enumerated() { try check(item, is: element, path: path + [AnyKey(intValue: i)]) }
            default:
                try check(node, is: element, path: path)
            }
        case let .map(value):
            guard case let .mapping(mapping) = node else {
                throw decoding.error("expected a mapping, found \(describe(node))", at: node, path: path)
            }
            for (key, item) in mapping { try check(item, is: value, path: path + [AnyKey(key.string ?? "\(key)")]) }
        case let .object(options):
            try check(node, against: options, path: path)
        case let .oneOf(types):
            var first: (any Error)?
            for t in types {
                do { return try check(node, is: t, path: path) } catch { first = first ?? error }
            }
            if let first { throw first }
        }
    }

    func expectScalar(_ node: Node, _ type: OptionType, _ path: [any CodingKey]) throws {
        guard case .scalar = node else {
            throw decoding.error("expected \(type.displayName), found \(describe(node))", at: node, path: path)
        }
    }
}

extension ComponentConfig {
    /// Checks these options against `spec` (see ``SpecCheck``).
    public func check(against spec: ComponentSpec) throws {
        try SpecCheck(decoding: decoding).check(options, against: spec.options, path: path)
        guard case let .mapping(mapping) = options else { return }
        for group in spec.alternatives {
            let given = group.filter { mapping[Node($0)] != nil }
            if given.isEmpty {
                throw decoding.error("give one of " + group.map { "'\($0)'" }.joined(separator: " or "), at: options, path: path)
            }
            if given.count > 1 {
                throw decoding.error(
                    given.map { "'\($0)'" }.joined(separator: " and ") + " exclude each other; give one",
                    at: mapping[Node(given[1])], path: path + [AnyKey(given[1])])
            }
        }
    }
}
