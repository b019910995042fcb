import Foundation
import RollspecClient

extension RewardKind {
    /// The reward, 0 or 1, of `response` for `reference`.
    ///
    /// - Parameter pattern: the reference compiled (`regex` only; compiled here when nil).
    public func score(response: String, reference: String, pattern: NSRegularExpression? = nil) -> Double {
        switch self {
        case .exact:
            return AnswerText.normalised(AnswerText.answer(in: response)) == AnswerText.normalised(reference) ? 1 : 0
        case .numeric:
            guard let want = AnswerText.lastNumber(in: reference),
                  let got = AnswerText.lastNumber(in: AnswerText.answer(in: response)) else { return 0 }
            return abs(got - want) <= 1e-6 * max(1, abs(want)) ? 1 : 0
        case .contains:
            let want = AnswerText.normalised(reference)
            return !want.isEmpty && response.range(of: want, options: .caseInsensitive) != nil ? 1 : 0
        case .regex:
            guard let regex = pattern ?? (try? NSRegularExpression(pattern: reference)) else { return 0 }
            let range = NSRange(response.startIndex..., in: response)
            return regex.firstMatch(in: response, range: range) != nil ? 1 : 0
        }
    }

    /// Checks that `reference` can be scored with this kind: a number for `numeric`, a valid
    /// pattern for `regex`, not empty for the others.
    /// - Returns: what is wrong, or nil.
    public func problem(withReference reference: String) -> String? {
        switch self {
        case .exact, .contains:
            return AnswerText.normalised(reference).isEmpty ? "the answer is empty" : nil
        case .numeric:
            return AnswerText.lastNumber(in: reference) == nil ? "the answer \"\(reference)\" has no number (reward numeric)" : nil
        case .regex:
            do { _ = try NSRegularExpression(pattern: reference); return nil } catch {
                return "the answer \"\(reference)\" is not a valid regular expression (reward regex)"
            }
        }
    }
}

/// Reading the answer out of a response, leniently.
public enum AnswerText {
    /// The text after the last "Answer:" (any case) up to the end of its line, or the whole
    /// response when it has none.
    public static func answer(in response: String) -> String {
        guard let marker = response.range(of: "answer:", options: [.caseInsensitive, .backwards]) else { return response }
        let rest = response[marker.upperBound...]
        return String(rest.prefix { $0 != "\n" })
    }

    /// `text` with surrounding space, quotes and `**`, and one final period removed, and runs of
    /// inner whitespace made single spaces.
    public static func normalised(_ text: String) -> String {
        var s = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for wrapper in ["**", "\"", "'", "`"] where s.count >= 2 * wrapper.count && s.hasPrefix(wrapper) && s.hasSuffix(wrapper) {
            s = String(s.dropFirst(wrapper.count).dropLast(wrapper.count)).trimmingCharacters(in: .whitespaces)
        }
        if s.hasSuffix(".") { s.removeLast() }
        return s.trimmingCharacters(in: .whitespaces)
    }

    /// The numbers in `text`, in order: an optional minus, digits with optional thousands
    /// commas, an optional fraction (`-1,234.5` → -1234.5).
    public static func numbers(in text: String) -> [Double] {
        let range = NSRange(text.startIndex..., in: text)
        return numberPattern.matches(in: text, range: range).compactMap { m in
            Range(m.range, in: text).flatMap { Double(text[$0].replacingOccurrences(of: ",", with: "")) }
        }
    }

    /// The last number in `text`, or nil.
    public static func lastNumber(in text: String) -> Double? { numbers(in: text).last }

    private static let numberPattern = try! NSRegularExpression(pattern: #"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?"#)
}
