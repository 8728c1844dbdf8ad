export const metadata = {
  title: "Next.js example",
  description: "A small Next.js app shipped with the Universal Healer demo.",
};

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
