package dev.skiff.sdk;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The handler threw (Java) or raised (Python): the remote exception's type, message and stack trace
 * (or traceback), with its causes as causes of this exception, each a {@code RemoteException} too.
 * {@link #getMessage} reads {@code TYPE: MESSAGE}.
 */
public final class RemoteException extends SkiffException {
  private static final long serialVersionUID = 1L;
  private static final Pattern CAUSED_BY =
      Pattern.compile("(?m)^Caused by: ([\\w.$]+)(?:: (.*))?$");

  private final String remoteType;
  private final String remoteMessage;
  private final String remoteStackTrace;

  public RemoteException(String remoteType, String remoteMessage, String remoteStackTrace) {
    this(remoteType, remoteMessage, remoteStackTrace, causes(remoteStackTrace));
  }

  private RemoteException(
      String remoteType, String remoteMessage, String remoteStackTrace, List<String[]> causes) {
    super(remoteType + (remoteMessage.isEmpty() ? "" : ": " + remoteMessage), chain(causes, 0));
    this.remoteType = remoteType;
    this.remoteMessage = remoteMessage;
    this.remoteStackTrace = remoteStackTrace;
  }

  private static RemoteException chain(List<String[]> causes, int i) {
    if (i >= causes.size()) {
      return null;
    }
    String[] c = causes.get(i);
    return new RemoteException(c[0], c[1], "", causes.subList(i + 1, causes.size()));
  }

  /** The "Caused by:" lines of a Java stack trace, outermost first. */
  private static List<String[]> causes(String trace) {
    List<String[]> found = new ArrayList<>();
    Matcher m = CAUSED_BY.matcher(trace == null ? "" : trace);
    while (m.find()) {
      found.add(new String[] {m.group(1), m.group(2) == null ? "" : m.group(2)});
    }
    return found;
  }

  /** The remote exception's type: a Java class name, or a Python exception name. */
  public String remoteType() {
    return remoteType;
  }

  /** The remote exception's own message. */
  public String remoteMessage() {
    return remoteMessage;
  }

  /** The remote stack trace (Java) or traceback (Python) as it was printed, causes included. */
  public String remoteStackTrace() {
    return remoteStackTrace;
  }
}
