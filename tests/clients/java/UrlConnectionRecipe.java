// Java HttpURLConnection through smokescreen (docs/clients.md, tested by
// run.sh). Run with -Djdk.http.auth.tunneling.disabledSchemes= and the proxy
// as system properties (Java does not read HTTPS_PROXY); without the first,
// run.sh checks the pitfall.
import java.io.IOException;
import java.io.InputStream;
import java.net.Authenticator;
import java.net.HttpURLConnection;
import java.net.PasswordAuthentication;
import java.net.URL;
import java.nio.charset.StandardCharsets;

public class UrlConnectionRecipe {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static String read(InputStream in) throws IOException {
        return in == null ? null : new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        String user = System.getenv("PROXY_USER");
        String password = System.getenv("PROXY_PASS");
        boolean tunnelingAllowed = "".equals(System.getProperty("jdk.http.auth.tunneling.disabledSchemes"));
        if (args.length > 0 && args[0].equals("env-only")) {
            // Pitfall: with only HTTPS_PROXY set (run.sh sets it), Java goes
            // direct: here that fails to resolve, as no proxy was asked.
            try {
                new URL("https://api.example.com/").openConnection().connect();
                throw new AssertionError("connected without a proxy");
            } catch (java.net.UnknownHostException e) {
                System.out.println("pitfall (HTTPS_PROXY ignored): " + e);
            }
            return;
        }

        // --- recipe ---
        // java -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=4750 \
        //      -Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=4750 \
        //      -Djdk.http.auth.tunneling.disabledSchemes= ...
        Authenticator.setDefault(new Authenticator() {
            @Override
            protected PasswordAuthentication getPasswordAuthentication() {
                if (getRequestorType() != RequestorType.PROXY) return null;
                return new PasswordAuthentication(user, password.toCharArray());
            }
        });
        HttpURLConnection c = (HttpURLConnection) new URL("https://api.example.com/").openConnection();
        // --- end ---

        if (!tunnelingAllowed) {
            // Pitfall: without the property no credentials are sent on the
            // CONNECT: status 407 and a null error stream, which code that
            // reads the error body turns into a NullPointerException.
            int status = c.getResponseCode();
            InputStream error = c.getErrorStream();
            System.out.println("pitfall (no disabledSchemes): status " + status + ", error stream " + error);
            check(status == 407 && error == null, "expected 407 with no body without the property");
            System.out.println("java-urlconnection pitfall: checked");
            return;
        }
        check(c.getResponseCode() == 200, "https status");
        check("hello from api.example.com\n".equals(read(c.getInputStream())), "https body");
        HttpURLConnection plain = (HttpURLConnection) new URL("http://api.example.com/").openConnection();
        check(plain.getResponseCode() == 200, "http status");

        // A refused https:// request: IOException "Unable to tunnel through
        // proxy. Proxy returns "HTTP/1.1 403 Forbidden"".
        try {
            ((HttpURLConnection) new URL("https://denied.example.com/").openConnection()).getResponseCode();
            throw new AssertionError("denied HTTPS request succeeded");
        } catch (IOException e) {
            System.out.println("denial (https): " + e);
            check(String.valueOf(e.getMessage()).contains("403"), "https denial: " + e);
        }
        // A refused http:// request: status 403, the reason in the header and
        // in getErrorStream() (getInputStream() throws).
        HttpURLConnection denied = (HttpURLConnection) new URL("http://denied.example.com/").openConnection();
        int status = denied.getResponseCode();
        String body = read(denied.getErrorStream());
        System.out.println("denial (http): " + status + " " + denied.getHeaderField("X-Smokescreen-Error"));
        check(status == 403 && body != null && body.contains("denied to host"), "http denial");
        System.out.println("java-urlconnection: all checks passed");
    }
}
