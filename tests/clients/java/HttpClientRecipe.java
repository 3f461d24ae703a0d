// Java 11+ java.net.http.HttpClient through smokescreen (docs/clients.md,
// tested by run.sh). Run with -Djdk.http.auth.tunneling.disabledSchemes=
// for the recipe; without it, run.sh checks the pitfall (HTTPS fails 407).
import java.io.IOException;
import java.net.Authenticator;
import java.net.InetSocketAddress;
import java.net.PasswordAuthentication;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class HttpClientRecipe {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) throws Exception {
        String user = System.getenv("PROXY_USER");
        String password = System.getenv("PROXY_PASS");
        boolean tunnelingAllowed = "".equals(System.getProperty("jdk.http.auth.tunneling.disabledSchemes"));

        // --- recipe ---
        HttpClient client = HttpClient.newBuilder()
            .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", 4750)))
            .authenticator(new Authenticator() {
                @Override
                protected PasswordAuthentication getPasswordAuthentication() {
                    if (getRequestorType() != RequestorType.PROXY) return null;
                    return new PasswordAuthentication(user, password.toCharArray());
                }
            })
            .build();
        HttpRequest request = HttpRequest.newBuilder(URI.create("https://api.example.com/")).build();
        // --- end ---

        if (!tunnelingAllowed) {
            // Pitfall: without the property Java will not send Basic
            // credentials on a CONNECT; the request fails with the 407.
            try {
                HttpResponse<String> r = client.send(request, HttpResponse.BodyHandlers.ofString());
                System.out.println("pitfall (no disabledSchemes): status " + r.statusCode());
                check(r.statusCode() == 407, "expected 407 without the property");
            } catch (IOException e) {
                System.out.println("pitfall (no disabledSchemes): " + e);
                check(String.valueOf(e.getMessage()).contains("407"), "expected a 407 failure");
            }
            System.out.println("java-httpclient pitfall: checked");
            return;
        }
        HttpResponse<String> r = client.send(request, HttpResponse.BodyHandlers.ofString());
        check(r.statusCode() == 200 && r.body().equals("hello from api.example.com\n"), "https: " + r.body());
        r = client.send(HttpRequest.newBuilder(URI.create("http://api.example.com/")).build(),
            HttpResponse.BodyHandlers.ofString());
        check(r.statusCode() == 200, "http: " + r.statusCode());

        // A refused https:// request: IOException "Tunnel failed, got: 403".
        try {
            client.send(HttpRequest.newBuilder(URI.create("https://denied.example.com/")).build(),
                HttpResponse.BodyHandlers.ofString());
            throw new AssertionError("denied HTTPS request succeeded");
        } catch (IOException e) {
            System.out.println("denial (https): " + e);
            check(String.valueOf(e.getMessage()).contains("403"), "https denial: " + e);
        }
        // A refused http:// request: a 403 response with the reason.
        r = client.send(HttpRequest.newBuilder(URI.create("http://denied.example.com/")).build(),
            HttpResponse.BodyHandlers.ofString());
        System.out.println("denial (http): " + r.statusCode() + " "
            + r.headers().firstValue("X-Smokescreen-Error").orElse("(none)"));
        check(r.statusCode() == 403, "http denial");
        System.out.println("java-httpclient: all checks passed");
    }
}
