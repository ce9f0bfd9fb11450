module.exports = {
  displayName: 'compliance-reporting',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/apps/compliance-reporting',
};
