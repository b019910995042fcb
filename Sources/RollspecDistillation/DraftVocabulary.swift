/// The tokens a distilled draft's head is restricted to, saved beside the draft.
public enum DraftVocabulary {
    /// The file in a draft directory naming those tokens: a JSON list of ids, ascending.
    public static let fileName = "draft_vocabulary.json"

    /// The `limit` most frequent tokens of the target's answers (weight 4), recorded top-k
    /// and prompts (weight 1 each), plus `always`; ties go to the smaller id.
    static func frequentTokens(_ data: [DistillExample], limit: Int, always: Set<Int>) -> [Int] {
        var counts: [Int: Int] = [:]
        for e in data {
            for t in e.answer { counts[t, default: 0] += 4 }
            for top in e.topK { for t in top.tokens { counts[Int(t), default: 0] += 1 } }
            for t in e.prompt { counts[t, default: 0] += 1 }
        }
        let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
        return Array(Set(ranked.prefix(max(0, limit - always.count))).union(always)).sorted()
    }
}
