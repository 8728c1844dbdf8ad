export default function Home() {
  return (
    <main>
      <h1>Hello from Next.js</h1>
      <p>This page is served by the example app in examples/apps/nextjs-app.</p>
    </main>
  );
}
