import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The report's SVG and HTML read back by libxml2 (through `XMLDocument`), a parser that
/// shares nothing with the code that wrote them.
enum XMLTree {
    struct NoDocument: Error {}

    /// The document, or the parser's error when the text is not well-formed XML.
    static func parse(_ text: String) throws -> XMLDocument {
        // On Linux XMLDocument crashes on text with no element at all (a missing file reads as
        // ""), taking the whole test run down instead of failing one test.
        guard text.contains("<") else { throw NoDocument() }
        return try XMLDocument(xmlString: text, options: [])
    }

    /// Every element below `node` (itself included) with this local name, or all of them, in
    /// document order; by local name, so the SVG and XHTML default namespaces need no prefixes.
    static func elements(_ name: String? = nil, in node: XMLNode) -> [XMLElement] {
        var found = [XMLElement]()
        if let element = node as? XMLElement, name == nil || element.localName == name { found.append(element) }
        for child in node.children ?? [] { found += elements(name, in: child) }
        return found
    }

    /// An attribute's value, or nil. (By scanning: on Linux `attribute(forName:)` misses
    /// attributes without a prefix on elements in a default namespace.)
    static func attribute(_ name: String, of element: XMLElement) -> String? {
        element.attributes?.first { $0.name == name }?.stringValue
    }
}
