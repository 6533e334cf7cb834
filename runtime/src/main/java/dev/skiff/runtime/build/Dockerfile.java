package dev.skiff.runtime.build;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A Dockerfile's instructions: comments and blank lines dropped, lines continued with a trailing
 * backslash joined, keywords upper-cased. {@link #substitute} expands {@code $NAME} and {@code
 * ${NAME}} as Docker does in the instructions that take variables.
 */
public final class Dockerfile {
  private Dockerfile() {}

  /** One instruction: its keyword, the rest of its text, and the line it starts on. */
  public record Instruction(String keyword, String args, int line) {
    @Override
    public String toString() {
      return keyword + " " + args;
    }
  }

  public static List<Instruction> parse(String text) {
    List<Instruction> out = new ArrayList<>();
    String[] lines = text.split("\n", -1);
    StringBuilder current = null;
    int start = 0;
    for (int i = 0; i < lines.length; i++) {
      String line = lines[i].stripTrailing();
      String trimmed = line.strip();
      if (current == null && (trimmed.isEmpty() || trimmed.startsWith("#"))) {
        continue;
      }
      if (current != null && trimmed.startsWith("#")) {
        continue; // comments inside a continued instruction
      }
      boolean continues = line.endsWith("\\");
      String part = continues ? line.substring(0, line.length() - 1) : line;
      if (current == null) {
        current = new StringBuilder(part.strip());
        start = i + 1;
      } else {
        current.append(' ').append(part.strip());
      }
      if (!continues) {
        String s = current.toString();
        int space = s.indexOf(' ');
        String keyword = (space < 0 ? s : s.substring(0, space)).toUpperCase(Locale.ROOT);
        String args = space < 0 ? "" : s.substring(space + 1).strip();
        out.add(new Instruction(keyword, args, start));
        current = null;
      }
    }
    if (current != null) {
      throw new IllegalArgumentException("line " + start + ": ends with a backslash");
    }
    return out;
  }

  /** {@code text} with {@code $NAME} and {@code ${NAME}} replaced from {@code vars} (unset: ""). */
  public static String substitute(String text, Map<String, String> vars) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == '\\' && i + 1 < text.length() && text.charAt(i + 1) == '$') {
        out.append('$');
        i++;
      } else if (c == '$' && i + 1 < text.length() && text.charAt(i + 1) == '{') {
        int end = text.indexOf('}', i);
        if (end < 0) {
          throw new IllegalArgumentException("unclosed ${ in '" + text + "'");
        }
        out.append(vars.getOrDefault(text.substring(i + 2, end), ""));
        i = end;
      } else if (c == '$'
          && i + 1 < text.length()
          && (Character.isLetter(text.charAt(i + 1)) || text.charAt(i + 1) == '_')) {
        int end = i + 1;
        while (end < text.length()
            && (Character.isLetterOrDigit(text.charAt(end)) || text.charAt(end) == '_')) {
          end++;
        }
        out.append(vars.getOrDefault(text.substring(i + 1, end), ""));
        i = end - 1;
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }
}
